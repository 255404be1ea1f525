#!/usr/bin/python3
"""Produce 1,000 messages with confluent-kafka (librdkafka) and consume them back.

Usage: confluent_roundtrip.py BOOTSTRAP TOPIC
Exits non-zero if what is read back differs from what was produced.
The consumer has a group.id (librdkafka requires one) but uses assign()
with OFFSET_BEGINNING and never commits.
"""
import sys
import time

from roundtrip_check import same_per_partition

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

N = 1000


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    errors = []

    def on_error(err):
        errors.append(err)
        print("client error: %s" % err, flush=True)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": False, "linger.ms": 5,
                         "error_cb": on_error})
    sent = {}
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(err)
            return
        sent.setdefault(msg.partition(), []).append((msg.offset(), msg.key(), msg.value()))

    for i in range(N):
        key = ("k%d" % (i % 17)).encode()
        value = ("confluent message %04d %s" % (i, "y" * (i % 50))).encode()
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(60)
    if left or failures or sum(len(v) for v in sent.values()) != N:
        print("FAIL: %d messages not delivered, %d failed (%s)" % (left, len(failures), failures[:3]))
        return 1
    print("produced %d messages to partitions %s" % (N, sorted(sent)))

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-unused",
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "enable.partition.eof": True, "error_cb": on_error})
    md = consumer.list_topics(topic, timeout=30)
    parts = sorted(md.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])

    got = {}
    count = 0
    eof = set()
    deadline = time.time() + 60
    while (count < N or len(eof) < len(parts)) and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
                continue
            print("FAIL: consume error: %s" % msg.error())
            return 1
        got.setdefault(msg.partition(), []).append((msg.offset(), msg.key(), msg.value()))
        count += 1
    consumer.close()

    if not same_per_partition(sent, got):
        return 1
    if errors:
        print("note: %d client errors reported (see above)" % len(errors))
    print("OK: consumed %d messages identical to those produced" % count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
