#!/usr/bin/python3
"""Produce 1,000 messages with kafka-python and consume them back.

Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC
Exits non-zero if what is read back differs from what was produced.
No consumer group is used (group_id=None, assign + seek_to_beginning).
"""
import sys
import time

from roundtrip_check import same_per_partition

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

N = 1000


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0,
                             linger_ms=5, request_timeout_ms=30000)
    sent = {}  # partition -> list of (offset, key, value)
    futures = []
    for i in range(N):
        key = ("k%d" % (i % 17)).encode()
        value = ("kafka-python message %04d %s" % (i, "x" * (i % 50))).encode()
        futures.append((key, value, producer.send(topic, key=key, value=value)))
    producer.flush(timeout=60)
    for key, value, fut in futures:
        md = fut.get(timeout=60)
        sent.setdefault(md.partition, []).append((md.offset, key, value))
    producer.close(timeout=10)
    print("produced %d messages to partitions %s" % (N, sorted(sent)))

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, request_timeout_ms=30000)
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        print("FAIL: no partitions for topic %s" % topic)
        return 1
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)

    got = {}
    count = 0
    deadline = time.time() + 60
    while count < N and time.time() < deadline:
        batch = consumer.poll(timeout_ms=1000)
        for tp, recs in batch.items():
            for r in recs:
                got.setdefault(tp.partition, []).append((r.offset, r.key, r.value))
                count += 1
    # Give a moment for anything unexpected beyond N to show up.
    for tp, recs in consumer.poll(timeout_ms=500).items():
        for r in recs:
            got.setdefault(tp.partition, []).append((r.offset, r.key, r.value))
            count += 1
    consumer.close()

    if not same_per_partition(sent, got):
        return 1
    print("OK: consumed %d messages identical to those produced" % count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
