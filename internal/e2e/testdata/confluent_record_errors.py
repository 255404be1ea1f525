#!/usr/bin/python3
"""Per-record produce errors (KIP-467) and Kafka 3.9's deprecated topic configs, with confluent-kafka (librdkafka).

Usage: confluent_record_errors.py BOOTSTRAP TOPIC

1. The AdminClient creates TOPIC (compacted, one partition) with the
   deprecated message.format.version=0.10.0.0, changes it with AlterConfigs,
   sees it with DescribeConfigs, and has a bad value refused; it sets a
   broker's replication throttle, which Vigil stores and ignores, and has
   log.retention.ms, which Vigil's flags set, refused.
2. 100 messages are produced in one batch, 10 of them without a key. The
   10 must fail with INVALID_RECORD. A librdkafka that knows KIP-467 (it has
   the _INVALID_DIFFERENT_RECORD error) fails the others with
   _INVALID_DIFFERENT_RECORD; an older one (Debian 12's 2.0.2) fails the
   whole batch with INVALID_RECORD.
3. The keyed messages that failed are sent again and delivered, and the
   topic then holds exactly the 90 keyed messages: nothing of the refused
   batch was stored.
Exits non-zero on any difference, printing why.
"""
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition, libversion
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

N = 100


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def configs(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    cfg = {"cleanup.policy": "compact", "message.format.version": "0.10.0.0"}
    for _, f in admin.create_topics([NewTopic(topic, 1, 1, config=cfg)]).items():
        f.result(30)

    def described():
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        return {k: v.value for k, v in admin.describe_configs([res])[res].result(30).items()}

    got = described()
    if got.get("message.format.version") != "0.10.0.0" or got.get("cleanup.policy") != "compact":
        fail("described after create: %s" % {k: got.get(k) for k in cfg})
    # AlterConfigs replaces the whole set, so cleanup.policy goes along.
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"cleanup.policy": "compact", "message.format.version": "2.8"})
    admin.alter_configs([res])[res].result(30)
    if described().get("message.format.version") != "2.8":
        fail("AlterConfigs message.format.version=2.8 not described")
    bad = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"cleanup.policy": "compact", "message.format.version": "banana"})
    try:
        admin.alter_configs([bad])[bad].result(30)
        fail("AlterConfigs message.format.version=banana was accepted")
    except KafkaException as e:
        if e.args[0].code() != KafkaError.INVALID_CONFIG:
            fail("AlterConfigs message.format.version=banana: %s, want INVALID_CONFIG" % e)
    # A dynamic broker config Vigil ignores (kafka-reassign-partitions'
    # throttle) is accepted and described; one Vigil's flags set is refused.
    broker = str(sorted(admin.list_topics(timeout=30).brokers)[0])
    res = ConfigResource(ConfigResource.Type.BROKER, broker, set_config={"leader.replication.throttled.rate": "1048576"})
    admin.alter_configs([res])[res].result(30)
    res = ConfigResource(ConfigResource.Type.BROKER, broker)
    got = admin.describe_configs([res])[res].result(30)
    if got.get("leader.replication.throttled.rate") is None or got["leader.replication.throttled.rate"].value != "1048576":
        fail("broker %s: leader.replication.throttled.rate not described after AlterConfigs" % broker)
    bad = ConfigResource(ConfigResource.Type.BROKER, broker, set_config={"log.retention.ms": "1000"})
    try:
        admin.alter_configs([bad])[bad].result(30)
        fail("AlterConfigs of broker %s log.retention.ms was accepted" % broker)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.INVALID_REQUEST:
            fail("AlterConfigs of broker log.retention.ms: %s, want INVALID_REQUEST" % e)
    print("configs: message.format.version accepted, altered, described; a bad value refused; a broker throttle stored", flush=True)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    configs(bootstrap, topic)

    kip467 = hasattr(KafkaError, "_INVALID_DIFFERENT_RECORD")
    print("librdkafka %s, KIP-467 per-record errors: %s" % (libversion()[0], kip467), flush=True)
    # One batch: everything is queued before the linger ends.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                         "linger.ms": 2000, "retries": 0})
    keyless = {i for i in range(N) if i % 10 == 3}
    result = {}

    def report(i):
        def on_delivery(err, msg):
            result[i] = err
        return on_delivery

    def produce(indices):
        for i in indices:
            key = None if i in keyless else ("key-%03d" % i).encode()
            producer.produce(topic, key=key, value=("value %03d" % i).encode(), partition=0, on_delivery=report(i))
        if producer.flush(60):
            fail("messages left undelivered after 60s")

    produce(range(N))
    codes = {i: (e.code() if e is not None else None) for i, e in result.items()}
    if len(codes) != N:
        fail("%d delivery reports, want %d" % (len(codes), N))
    invalid = {i for i, c in codes.items() if c == KafkaError.INVALID_RECORD}
    if kip467:
        different = {i for i, c in codes.items() if c == KafkaError._INVALID_DIFFERENT_RECORD}
        if invalid != keyless:
            fail("INVALID_RECORD for %s, want exactly the keyless %s" % (sorted(invalid), sorted(keyless)))
        if not different:
            fail("no message failed with _INVALID_DIFFERENT_RECORD")
        other = {i: c for i, c in codes.items() if i not in invalid | different and c is not None}
    else:
        if not keyless <= invalid:
            fail("keyless messages %s did not all fail with INVALID_RECORD: %s" % (sorted(keyless), codes))
        other = {i: c for i, c in codes.items() if i not in invalid and c is not None}
    if other:
        fail("unexpected errors: %s" % other)
    print("produce: %d INVALID_RECORD (the keyless %s), %d delivered, %d other failures" % (
        len(invalid), sorted(keyless), sum(1 for c in codes.values() if c is None),
        sum(1 for i, c in codes.items() if c is not None and i not in invalid)), flush=True)

    # The keyed messages that failed with their batch go again.
    again = [i for i in range(N) if i not in keyless and codes[i] is not None]
    result.clear()
    produce(again)
    if any(e is not None for e in result.values()) or len(result) != len(again):
        fail("resending %d keyed messages: %s" % (len(again), {i: str(e) for i, e in result.items() if e is not None}))

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-unused", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    keys = []
    deadline = time.time() + 60
    while time.time() < deadline:
        m = consumer.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                break
            fail("consume: %s" % m.error())
        keys.append(m.key())
    consumer.close()
    want = sorted(("key-%03d" % i).encode() for i in range(N) if i not in keyless)
    if sorted(keys) != want or len(keys) != len(want):
        fail("read %d records back, want the %d keyed ones (%s...)" % (len(keys), len(want), keys[:5]))
    print("read back exactly the %d keyed messages" % len(keys), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
