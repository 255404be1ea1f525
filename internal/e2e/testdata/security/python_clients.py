#!/usr/bin/python3
"""Python Kafka clients over vigil's SASL listeners (internal/e2e/
security_clients_test.go).

Usage:
  python_clients.py roundtrip CLIENT BOOTSTRAP PROTOCOL MECHANISM USER PASSWORD CAFILE TOPIC COUNT
      CLIENT is kafka-python or confluent. Produces COUNT messages (acks=all),
      consumes them in the group TOPIC-group, commits, and reads the
      committed offsets back: they must add up to COUNT (a fresh topic).
  python_clients.py oauth BOOTSTRAP CAFILE TOPIC COUNT TOKENFILE
      confluent-kafka over SASL_SSL with OAUTHBEARER: librdkafka asks
      oauth_cb for a token, which returns the JWT in TOKENFILE (signed by the
      test); produces COUNT messages and consumes them back.
  python_clients.py reauth BOOTSTRAP MECHANISM USER PASSWORD TOPIC SECONDS
      confluent-kafka over SASL_PLAINTEXT produces one message every 20 ms
      for SECONDS; every one must be delivered.

Exits non-zero, saying why, at the first failure.
"""
import sys
import time


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def confluent_conf(bootstrap, protocol, mechanism, user=None, password=None, cafile=None):
    conf = {"bootstrap.servers": bootstrap, "security.protocol": protocol, "sasl.mechanism": mechanism}
    if user is not None:
        conf.update({"sasl.username": user, "sasl.password": password})
    if cafile:
        conf["ssl.ca.location"] = cafile
    return conf


def confluent_produce(conf, topic, count, prefix):
    from confluent_kafka import Producer
    errors, delivered = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append(msg.offset())

    p = Producer(dict(conf, **{"acks": "all", "message.timeout.ms": 20000}))
    for i in range(count):
        p.produce(topic, ("%s %d" % (prefix, i)).encode(), on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(30)
    if errors or left or len(delivered) != count:
        fail("confluent produce: %d delivered, %d left, errors %s" % (len(delivered), left, errors[:5]))


def confluent_consume(conf, topic, group, count):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer(dict(conf, **{"group.id": group, "auto.offset.reset": "earliest",
                               "enable.auto.commit": False, "session.timeout.ms": 10000}))
    c.subscribe([topic])
    seen = set()
    deadline = time.time() + 40
    while len(seen) < count and time.time() < deadline:
        msg = c.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            fail("confluent consumer error: %s" % msg.error())
        seen.add((msg.partition(), msg.offset()))
    if len(seen) != count:
        fail("confluent consumed %d messages, want %d" % (len(seen), count))
    c.commit(asynchronous=False)
    parts = [TopicPartition(topic, tp.partition) for tp in c.assignment()]
    committed = sum(tp.offset for tp in c.committed(parts, timeout=10) if tp.offset >= 0)
    c.close()
    return committed


def kafka_python_roundtrip(bootstrap, protocol, mechanism, user, password, cafile, topic, count):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    conf = {"bootstrap_servers": bootstrap, "security_protocol": protocol, "sasl_mechanism": mechanism,
            "sasl_plain_username": user, "sasl_plain_password": password}
    if protocol == "SASL_SSL":
        conf["ssl_cafile"] = cafile
    p = KafkaProducer(acks="all", **conf)
    futures = [p.send(topic, ("kafka-python %d" % i).encode()) for i in range(count)]
    for f in futures:
        f.get(timeout=30)
    p.close()

    c = KafkaConsumer(topic, group_id=topic + "-group", auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=10000, request_timeout_ms=30000, **conf)
    seen = set()
    deadline = time.time() + 40
    while len(seen) < count and time.time() < deadline:
        for tp, recs in c.poll(timeout_ms=1000).items():
            for r in recs:
                seen.add((tp.partition, r.offset))
    if len(seen) != count:
        fail("kafka-python consumed %d messages, want %d" % (len(seen), count))
    c.commit()
    committed = sum(c.committed(TopicPartition(topic, tp.partition)) or 0 for tp in c.assignment())
    c.close()
    return committed


def roundtrip(client, bootstrap, protocol, mechanism, user, password, cafile, topic, count):
    count = int(count)
    if client == "kafka-python":
        committed = kafka_python_roundtrip(bootstrap, protocol, mechanism, user, password, cafile, topic, count)
    else:
        conf = confluent_conf(bootstrap, protocol, mechanism, user, password, cafile if protocol == "SASL_SSL" else None)
        confluent_produce(conf, topic, count, "confluent")
        committed = confluent_consume(conf, topic, topic + "-group", count)
    if committed != count:
        fail("committed offsets add up to %d, want %d" % (committed, count))
    print("%s over %s with %s: produced, consumed and committed %d messages" % (client, protocol, mechanism, count))


def oauth(bootstrap, cafile, topic, count, tokenfile):
    count = int(count)
    calls = []

    def oauth_cb(oauthbearer_config):
        with open(tokenfile) as f:
            token = f.read().strip()
        calls.append(time.time())
        # (token, expiry as seconds since the epoch): librdkafka refreshes
        # the token at 80% of its life.
        return token, time.time() + 300

    conf = confluent_conf(bootstrap, "SASL_SSL", "OAUTHBEARER", cafile=cafile)
    conf["oauth_cb"] = oauth_cb
    confluent_produce(conf, topic, count, "oauth")
    got = confluent_consume(conf, topic, topic + "-group", count)
    if got != count:
        fail("committed offsets add up to %d, want %d" % (got, count))
    if not calls:
        fail("oauth_cb was never called")
    print("confluent-kafka with OAUTHBEARER: %d messages, oauth_cb called %d times" % (count, len(calls)))


def reauth(bootstrap, mechanism, user, password, topic, seconds):
    from confluent_kafka import Producer
    conf = confluent_conf(bootstrap, "SASL_PLAINTEXT", mechanism, user, password)
    errors, latencies = [], []

    def on_delivery(err, msg, sent):
        if err is not None:
            errors.append(str(err))
        else:
            latencies.append(time.time() - sent)

    p = Producer(dict(conf, **{"acks": "all", "message.timeout.ms": 10000, "linger.ms": 0}))
    end = time.time() + float(seconds)
    sent = 0
    while time.time() < end:
        now = time.time()
        p.produce(topic, b"%d" % sent, on_delivery=lambda err, msg, now=now: on_delivery(err, msg, now))
        sent += 1
        p.poll(0)
        time.sleep(0.02)
    left = p.flush(20)
    if errors or left or len(latencies) != sent:
        fail("sent %d, delivered %d, %d left, errors %s" % (sent, len(latencies), left, errors[:5]))
    print("delivered all %d messages in %ss; slowest delivery %.3fs" % (sent, seconds, max(latencies)))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    {"roundtrip": roundtrip, "oauth": oauth, "reauth": reauth}[mode](*args)


if __name__ == "__main__":
    main()
