#!/usr/bin/python3
"""Transactions with confluent-kafka (librdkafka) against a broker.

Usage:
  confluent_txn.py produce BOOTSTRAP TXNID TOPIC...
      A transactional producer writes six transactions over every partition
      of the topics, commits four and aborts two (each aborted one flushed
      first, so its records are in the log). A read_committed consumer
      must then read exactly the committed records at the offsets their
      delivery reports gave, checked at every message, and a
      read_uncommitted consumer must see the aborted ones too (else the
      check above proves nothing). Prints one JSON line:
      {"committed": [[topic, partition, offset, value]...], "aborted": [...]}.
  confluent_txn.py eos BOOTSTRAP TXNID GROUP OUT N IN...
      An exactly-once consume-transform-produce loop: a read_committed
      consumer in GROUP reads the N committed records of the IN topics, a
      transactional producer writes each, transformed, to OUT and commits
      the consumer's positions in the same transaction
      (send_offsets_to_transaction). The second batch is aborted after its
      output was flushed and its offsets sent; the loop rewinds to the
      group's committed offsets, which must not have moved, and does it
      again. Then OUT at read_committed holds every input transformed
      exactly once, and the group's committed offsets are the positions
      sent with the last commit. Prints {"offsets": [[topic, partition,
      offset]...]}.
  confluent_txn.py fence BOOTSTRAP TXNID TOPIC
      A producer writes (and flushes) records in an open transaction; a
      second producer with the same transactional.id calls
      init_transactions, which fences the first and aborts its
      transaction. The first producer's next produce and commit must fail
      with a fencing error, the second commits its own records, and
      read_committed sees only those.

Exits non-zero, saying why, at the first difference from what a Kafka
broker does.
"""
import json
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, OFFSET_INVALID, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)

TIMEOUT = 30  # seconds for each transactional call


class Fail(Exception):
    pass


def on_error(err):
    # librdkafka reports transient connection errors here too; a fatal one
    # is raised by the next transactional call, which is where it is judged.
    print("client error: %s" % err, flush=True)


def partitions_of(client, topics):
    md = client.list_topics(timeout=TIMEOUT)
    out = []
    for t in topics:
        if t not in md.topics or md.topics[t].error is not None:
            raise Fail("no metadata for topic %s" % t)
        out += [(t, p) for p in sorted(md.topics[t].partitions)]
    return out


def txn_producer(bootstrap, txnid):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txnid,
                  "transaction.timeout.ms": 30000, "linger.ms": 5, "error_cb": on_error})
    p.init_transactions(TIMEOUT)
    return p


def read_all(bootstrap, tps, isolation, want, forbidden, label):
    """Read tps from the beginning at the given isolation level until every
    (topic, partition, offset, value) of want was read, checking each
    message as it arrives: no duplicate, nothing in forbidden, nothing not
    in want. Then read on for a second to catch a late extra."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-" + label,
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": False, "error_cb": on_error})
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in tps])
    want = set(want)
    seen = set()
    deadline = time.time() + 60
    done_at = None
    try:
        while time.time() < deadline:
            if done_at is not None and time.time() - done_at > 1:
                return seen
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise Fail("%s: consumer error %s" % (label, msg.error()))
            rec = (msg.topic(), msg.partition(), msg.offset(), msg.value().decode())
            if rec in seen:
                raise Fail("%s: read %r twice" % (label, rec))
            if rec in forbidden:
                raise Fail("%s: read %r, a record of an aborted transaction" % (label, rec))
            if rec not in want:
                raise Fail("%s: read %r, which is not one of the %d expected records" % (label, rec, len(want)))
            seen.add(rec)
            if seen == want and done_at is None:
                done_at = time.time()
        raise Fail("%s: read %d of %d records in 60s; first missing: %r" % (
            label, len(seen), len(want), sorted(want - seen)[:3]))
    finally:
        c.close()


def produce(bootstrap, txnid, topics):
    p = txn_producer(bootstrap, txnid)
    tps = partitions_of(p, topics)
    delivered = {}
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(err)
            return
        delivered[msg.value().decode()] = (msg.topic(), msg.partition(), msg.offset())

    committed, aborted = [], []
    for i, outcome in enumerate(["commit", "abort", "commit", "commit", "abort", "commit"]):
        p.begin_transaction()
        values = []
        for j in range(5 * len(tps)):
            t, part = tps[j % len(tps)]
            v = "%s tx%d rec%d %s" % (txnid, i, j, outcome)
            p.produce(t, key=("k%d" % j).encode(), value=v.encode(), partition=part, on_delivery=on_delivery)
            values.append(v)
        # Flush before an abort too: the aborted records must reach the
        # log, or read_committed would not be tested on them.
        if p.flush(TIMEOUT):
            raise Fail("tx%d: records not delivered in %ds" % (i, TIMEOUT))
        if failures:
            raise Fail("tx%d: delivery failed: %s" % (i, failures[:3]))
        if outcome == "commit":
            p.commit_transaction(TIMEOUT)
        else:
            p.abort_transaction(TIMEOUT)
        for v in values:
            (committed if outcome == "commit" else aborted).append(delivered[v] + (v,))
        print("tx%d: %d records over %d partitions, %s" % (
            i, len(values), len(tps), {"commit": "committed", "abort": "aborted"}[outcome]), flush=True)

    read_all(bootstrap, tps, "read_committed", committed, set(aborted), "read_committed")
    print("read_committed: exactly the %d committed records, at their offsets" % len(committed), flush=True)
    read_all(bootstrap, tps, "read_uncommitted", committed + aborted, set(), "read_uncommitted")
    print("read_uncommitted: the %d aborted records are in the log too" % len(aborted), flush=True)
    print(json.dumps({"committed": committed, "aborted": aborted}))


def committed_offsets(consumer, tps):
    out = {}
    for tp in consumer.committed([TopicPartition(t, p) for t, p in tps], timeout=TIMEOUT):
        if tp.error is not None:
            raise Fail("committed offset of %s[%d]: %s" % (tp.topic, tp.partition, tp.error))
        out[(tp.topic, tp.partition)] = tp.offset
    return out


def eos(bootstrap, txnid, group, out_topic, n, in_topics):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                         "error_cb": on_error})
    producer = txn_producer(bootstrap, txnid)
    in_tps = partitions_of(consumer, in_topics)
    consumer.subscribe(in_topics)
    done = {}  # input (topic, partition, offset) -> value, of committed batches
    batch = 0
    last_sent = {}
    deadline = time.time() + 90
    while len(done) < n:
        if time.time() > deadline:
            raise Fail("eos: %d of %d inputs processed in 90s" % (len(done), n))
        msgs = consumer.consume(num_messages=25, timeout=0.5)
        if not msgs:
            continue
        producer.begin_transaction()
        inputs = {}
        for m in msgs:
            if m.error():
                raise Fail("eos: consumer error %s" % m.error())
            v = m.value().decode()
            key = (m.topic(), m.partition(), m.offset())
            if "abort" in v:
                raise Fail("eos: the read_committed input gave %r, of an aborted transaction" % ((key + (v,)),))
            if key in done:
                raise Fail("eos: input %r read again after its transaction committed" % ((key + (v,)),))
            inputs[key] = v
            producer.produce(out_topic, key=m.key(), value=("eos " + v).encode())
        assignment = consumer.assignment()
        positions = consumer.position(assignment)
        if batch == 1:
            # Read before the offsets are sent: with offsets pending in a
            # transaction, OffsetFetch at require_stable (librdkafka's at
            # read_committed) answers UNSTABLE_OFFSET_COMMIT until it ends.
            before = committed_offsets(consumer, [(tp.topic, tp.partition) for tp in assignment])
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), TIMEOUT)
        if batch == 1:
            # The output reaches the log and the offsets the group
            # coordinator, then the transaction is aborted: neither may be
            # seen, and the loop redoes the batch from the group's
            # committed offsets.
            if producer.flush(TIMEOUT):
                raise Fail("eos: output of the aborted batch not delivered")
            producer.abort_transaction(TIMEOUT)
            after = committed_offsets(consumer, [(tp.topic, tp.partition) for tp in assignment])
            if after != before:
                raise Fail("eos: the aborted transaction moved the committed offsets from %s to %s" % (before, after))
            for tp in assignment:
                off = after[(tp.topic, tp.partition)]
                consumer.seek(TopicPartition(tp.topic, tp.partition, off if off >= 0 else OFFSET_BEGINNING))
            print("eos: batch %d of %d inputs aborted after its output was flushed; rewound to %s" % (
                batch, len(inputs), sorted(after.items())), flush=True)
        else:
            producer.commit_transaction(TIMEOUT)
            done.update(inputs)
            for tp in positions:
                # A partition not read since the rewind has no position
                # (OFFSET_INVALID), and librdkafka sends no offset for it.
                if tp.offset >= 0:
                    last_sent[(tp.topic, tp.partition)] = tp.offset
        batch += 1
    print("eos: %d inputs in %d batches" % (len(done), batch), flush=True)

    # The group's committed offsets are what the last commit of each
    # partition sent, read with a fresh consumer of the group.
    check = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "isolation.level": "read_committed", "error_cb": on_error})
    got = committed_offsets(check, in_tps)
    check.close()
    for tp, off in last_sent.items():
        if got.get(tp) != off:
            raise Fail("eos: group %s committed offset of %s is %s, want %d" % (group, tp, got.get(tp), off))
    consumer.close()

    want = {"eos " + v for v in done.values()}
    out_tps = partitions_of(producer, [out_topic])
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-eos-check",
                  "isolation.level": "read_committed", "enable.auto.commit": False, "error_cb": on_error})
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in out_tps])
    seen = set()
    end = time.time() + 60
    settle = None
    while time.time() < end and (settle is None or time.time() - settle < 1):
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            raise Fail("eos check: consumer error %s" % m.error())
        v = m.value().decode()
        if v in seen:
            raise Fail("eos check: output %r read twice: not exactly once" % v)
        if v not in want:
            raise Fail("eos check: output %r was not expected" % v)
        seen.add(v)
        if seen == want and settle is None:
            settle = time.time()
    c.close()
    if seen != want:
        raise Fail("eos check: read %d of %d outputs; first missing %r" % (len(seen), len(want), sorted(want - seen)[:3]))
    print("eos: %s at read_committed holds each of the %d inputs exactly once; committed offsets %s" % (
        out_topic, len(want), sorted(last_sent.items())), flush=True)
    print(json.dumps({"offsets": [[t, p, o] for (t, p), o in sorted(last_sent.items())]}))


FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def open_flushed(producer, tps, label, n=10):
    """Begin a transaction and write n records in it, delivered."""
    producer.begin_transaction()
    for j in range(n):
        t, part = tps[j % len(tps)]
        producer.produce(t, value=("%s %d" % (label, j)).encode(), partition=part)
    if producer.flush(TIMEOUT):
        raise Fail("fence: %s: records not delivered" % label)


def expect_fenced(label, call):
    try:
        call()
    except KafkaException as e:
        err = e.args[0]
        if err.code() not in FENCED:
            raise Fail("fence: %s failed with %s, want a fencing error" % (label, err))
        print("fence: %s failed with %s (fatal=%s)" % (label, err, err.fatal()), flush=True)
        return
    raise Fail("fence: %s succeeded for a fenced producer" % label)


def fence(bootstrap, txnid, topic):
    # Two zombies, each fenced by the next producer of the id while its
    # transaction is open with records in the log: the first finds out
    # from a Produce, the second from its EndTxn.
    zombie1 = txn_producer(bootstrap, txnid)
    tps = partitions_of(zombie1, [topic])
    open_flushed(zombie1, tps, "zombie1 before")
    zombie2 = txn_producer(bootstrap, txnid)

    def produce_then_commit():
        for j in range(len(tps)):
            t, part = tps[j]
            zombie1.produce(t, value=("zombie1 after %d" % j).encode(), partition=part)
        zombie1.flush(TIMEOUT)
        zombie1.commit_transaction(TIMEOUT)
    expect_fenced("the first producer's produce and commit", produce_then_commit)

    open_flushed(zombie2, tps, "zombie2 before")
    fresh = txn_producer(bootstrap, txnid)
    expect_fenced("the second producer's commit", lambda: zombie2.commit_transaction(TIMEOUT))

    fresh.begin_transaction()
    committed = []
    for j in range(10):
        t, part = tps[j % len(tps)]
        v = "fresh %d" % j
        fresh.produce(t, value=v.encode(), partition=part)
        committed.append(v)
    fresh.commit_transaction(TIMEOUT)

    for isolation in ("read_committed", "read_uncommitted"):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-fence",
                      "isolation.level": isolation, "enable.auto.commit": False, "error_cb": on_error})
        c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in tps])
        seen = []
        end = time.time() + 30
        settle = None
        while time.time() < end and (settle is None or time.time() - settle < 1):
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                raise Fail("fence: consumer error %s" % m.error())
            v = m.value().decode()
            if isolation == "read_committed" and v.startswith("zombie"):
                raise Fail("fence: read_committed read %r, written by a fenced producer" % v)
            seen.append(v)
            if set(committed) <= set(seen) and settle is None:
                settle = time.time()
        c.close()
        if isolation == "read_committed" and sorted(seen) != sorted(committed):
            raise Fail("fence: read_committed read %s, want %s" % (sorted(seen), sorted(committed)))
        flushed = [v for v in seen if v.startswith("zombie1 before") or v.startswith("zombie2 before")]
        if isolation == "read_uncommitted" and (not set(committed) <= set(seen) or len(flushed) != 20):
            # Else the check above would prove nothing.
            raise Fail("fence: read_uncommitted read %s: want the 10 committed and the zombies' 20 flushed records" % seen)
        print("fence: %s read %d records, %d of them the fenced producers'" % (
            isolation, len(seen), sum(v.startswith("zombie") for v in seen)), flush=True)


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    try:
        if mode == "produce":
            produce(args[0], args[1], args[2:])
        elif mode == "eos":
            eos(args[0], args[1], args[2], args[3], int(args[4]), args[5:])
        elif mode == "fence":
            fence(args[0], args[1], args[2])
        else:
            raise Fail("unknown mode %s" % mode)
    except (Fail, KafkaException) as e:
        print("FAIL: %s" % e, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
