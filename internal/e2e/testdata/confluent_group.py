#!/usr/bin/python3
"""Consume a topic from the start in a consumer group with confluent-kafka
(librdkafka) and commit what was read.

Usage: confluent_group.py BOOTSTRAP TOPIC GROUP COUNT
Exits non-zero unless exactly COUNT distinct messages were read and the
synchronous commit succeeded.
"""
import sys
import time

from confluent_kafka import Consumer


def main():
    bootstrap, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 10000})
    consumer.subscribe([topic])
    seen = set()
    deadline = time.time() + 60
    while len(seen) < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            print("FAIL: consumer error: %s" % msg.error())
            return 1
        seen.add((msg.partition(), msg.offset()))
    assigned = sorted(tp.partition for tp in consumer.assignment())
    consumer.commit(asynchronous=False)
    consumer.close()
    print("group %s: assigned partitions %s, read %d messages" % (group, assigned, len(seen)))
    if len(seen) != count:
        print("FAIL: read %d messages, want %d" % (len(seen), count))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
