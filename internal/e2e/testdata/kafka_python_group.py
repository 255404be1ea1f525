#!/usr/bin/python3
"""Consume a topic from the start in a consumer group with kafka-python and
commit what was read.

Usage: kafka_python_group.py BOOTSTRAP TOPIC GROUP COUNT
Exits non-zero unless exactly COUNT distinct messages were read and the
commit succeeded. The caller checks the committed offsets on the broker.
"""
import sys
import time

from kafka import KafkaConsumer


def main():
    bootstrap, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=10000, request_timeout_ms=30000)
    seen = set()
    deadline = time.time() + 60
    while len(seen) < count and time.time() < deadline:
        for tp, recs in consumer.poll(timeout_ms=1000).items():
            for r in recs:
                seen.add((tp.partition, r.offset))
    assigned = sorted(tp.partition for tp in consumer.assignment())
    consumer.commit()
    consumer.close()
    print("group %s: assigned partitions %s, read %d messages" % (group, assigned, len(seen)))
    if len(seen) != count:
        print("FAIL: read %d messages, want %d" % (len(seen), count))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
