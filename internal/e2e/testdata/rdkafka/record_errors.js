// Produces 100 messages in one batch with node-rdkafka (librdkafka 2.12),
// 10 of them without a key, to partition 0 of a compacted topic, then
// sends again the keyed ones that failed, and prints one JSON line: the
// librdkafka version, the error code of every message's first delivery
// report (0: delivered; a string for an error it cannot name) and of
// every resent one. The Go test
// (internal/e2e/rdkafka_test.go) checks them.
//
// Usage: node record_errors.js BOOTSTRAP TOPIC
'use strict';
const Kafka = require('node-rdkafka');
const binding = require('node-rdkafka/librdkafka');

// node-rdkafka's delivery reports carry librdkafka's error string, not its
// code (the error's code is -1): codeOf finds the code whose string it is,
// as node-rdkafka parses it ("Broker: X" becomes "x").
const knownCodes = [Kafka.CODES.ERRORS.ERR_INVALID_RECORD, Kafka.CODES.ERRORS.ERR__INVALID_DIFFERENT_RECORD];
function codeOf(err) {
  for (const code of knownCodes) {
    const parts = binding.err2str(code).split(': ');
    if (parts[parts.length - 1].toLowerCase() === err.message) return code;
  }
  return typeof err.code === 'number' && err.code !== -1 ? err.code : 'unknown: ' + err.message;
}

const [bootstrap, topic] = process.argv.slice(2);
const N = 100;
const keyless = (i) => i % 10 === 3;

const producer = new Kafka.Producer({
  'bootstrap.servers': bootstrap,
  'dr_cb': true,
  'acks': 'all',
  'enable.idempotence': false,
  'retries': 0,
  // Every message is queued before the linger ends: one batch.
  'linger.ms': 2000,
});

let pending = null; // the round's reports, by message index
let done = null;
producer.on('delivery-report', (err, report) => {
  pending.codes[report.opaque] = err ? codeOf(err) : 0;
  if (Object.keys(pending.codes).length === pending.want) done();
});
producer.on('event.error', (err) => {
  console.error('client error: ' + err);
});

function round(indices) {
  return new Promise((resolve) => {
    pending = { codes: {}, want: indices.length };
    done = () => resolve(pending.codes);
    for (const i of indices) {
      const key = keyless(i) ? null : Buffer.from('key-' + String(i).padStart(3, '0'));
      producer.produce(topic, 0, Buffer.from('value ' + i), key, Date.now(), i);
    }
  });
}

const timer = setTimeout(() => {
  console.error('timed out after 60s');
  process.exit(1);
}, 60000);

producer.on('ready', async () => {
  producer.setPollInterval(50);
  const first = await round([...Array(N).keys()]);
  const failedKeyed = Object.keys(first).map(Number).filter((i) => first[i] !== 0 && !keyless(i));
  const again = failedKeyed.length ? await round(failedKeyed) : {};
  console.log(JSON.stringify({ librdkafka: Kafka.librdkafkaVersion, first, again }));
  clearTimeout(timer);
  producer.disconnect(() => process.exit(0));
});
producer.connect();
