// Consumes a topic with node-rdkafka (librdkafka 2.12) on the consumer
// group protocol of KIP-848 (group.protocol=consumer, the server-side
// assignor named by ASSIGNOR): one member, then a second joins, then the
// first leaves, while the Go test produces. Each member commits what it
// processed synchronously before it consumes again, so a revocation never
// drops processed but uncommitted records. It stops once it has seen N
// distinct values and prints one JSON line: the librdkafka version, how
// often each value was processed, and the group's assignor and epoch as
// each member saw its assignments (for the log).
// The Go test (internal/e2e/rdkafka_consumer_protocol_test.go) checks it.
//
// Usage: node consumer_protocol.js BOOTSTRAP TOPIC GROUP ASSIGNOR N
'use strict';
const Kafka = require('node-rdkafka');

const [bootstrap, topic, group, assignor, nStr] = process.argv.slice(2);
const N = parseInt(nStr, 10);
const counts = {};
let distinct = 0;
const events = [];

function member(name) {
  const c = new Kafka.KafkaConsumer({
    'bootstrap.servers': bootstrap,
    'group.id': group,
    'group.protocol': 'consumer',
    'group.remote.assignor': assignor,
    'enable.auto.commit': false,
    'rebalance_cb': function (err, assignment) {
      events.push(name + ': ' + err.message + ' ' + assignment.map((a) => a.partition).join(','));
      if (err.code === Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
        this.incrementalAssign(assignment);
      } else {
        this.incrementalUnassign(assignment);
      }
    },
  }, { 'auto.offset.reset': 'earliest' });
  const m = { name, c, stopped: false, done: null, processed: 0 };
  m.done = new Promise((resolve, reject) => {
    c.on('ready', () => {
      c.subscribe([topic]);
      const loop = () => {
        if (m.stopped || distinct >= N) {
          resolve();
          return;
        }
        c.consume(100, (err, msgs) => {
          if (err) {
            reject(err);
            return;
          }
          m.processed += msgs.length;
          for (const msg of msgs) {
            const v = msg.value.toString();
            counts[v] = (counts[v] || 0) + 1;
            if (counts[v] === 1) distinct++;
          }
          if (msgs.length > 0) {
            try {
              c.commitSync(msgs.map((msg) => ({ topic: msg.topic, partition: msg.partition, offset: msg.offset + 1 })));
            } catch (e) {
              reject(e);
              return;
            }
          }
          setImmediate(loop);
        });
      };
      loop();
    });
    c.on('event.error', reject);
    c.connect();
  });
  return m;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function disconnect(c) {
  return new Promise((resolve) => c.disconnect(() => resolve()));
}

async function main() {
  const deadline = setTimeout(() => {
    console.log(JSON.stringify({ librdkafka: Kafka.librdkafkaVersion, counts, events, error: 'timeout with ' + distinct + ' of ' + N }));
    process.exit(1);
  }, 100000);
  const a = member('a');
  while (distinct < N / 4) await sleep(20);
  const b = member('b');
  // The first leaves once the second has processed records of the
  // partitions it gave up (or, should the records run out first, near
  // the end).
  while (distinct < N / 2 || (b.processed === 0 && distinct < N * 0.9)) await sleep(20);
  events.push('a processed ' + a.processed + ', b ' + b.processed);
  a.stopped = true;
  await a.done;
  await disconnect(a.c); // leaves the group (epoch -1)
  events.push('a left');
  await b.done;
  await disconnect(b.c);
  clearTimeout(deadline);
  console.log(JSON.stringify({ librdkafka: Kafka.librdkafkaVersion, counts, events }));
}

main().catch((e) => {
  console.log(JSON.stringify({ librdkafka: Kafka.librdkafkaVersion, counts, events, error: String(e && e.message ? e.message : e) }));
  process.exit(1);
});
