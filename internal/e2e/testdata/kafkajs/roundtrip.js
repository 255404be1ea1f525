#!/usr/bin/env node
// Runs KafkaJS, the most used Node.js client, against a Vigil broker: the
// admin calls, an idempotent producer (uncompressed and gzip, the codecs
// KafkaJS has without plug-ins), a consumer group that commits and
// resumes, and offsets by time.
//
// Usage: node roundtrip.js BOOTSTRAP TOPIC
// Exits non-zero, saying why, at the first difference from what a Kafka
// broker answers.
'use strict'

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = require('kafkajs')

const [bootstrap, topic] = process.argv.slice(2)
const PARTITIONS = 3
const PER_CODEC = 500
const group = topic + '-group'

function fail (msg) {
  throw new Error(msg)
}

const kafka = new Kafka({
  clientId: 'vigil-e2e-kafkajs',
  brokers: [bootstrap],
  logLevel: logLevel.ERROR, // its warnings are advice about its own defaults
  retry: { retries: 5, initialRetryTime: 100 }
})

// consume runs one session of the group until it has n records and
// returns them by partition. KafkaJS commits what eachMessage resolved
// after every batch, and on disconnect.
async function consume (n) {
  const consumer = kafka.consumer({ groupId: group, heartbeatInterval: 500, rebalanceTimeout: 10000 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const got = {}
  let count = 0
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${count} of ${n} records in 60s`)), 60000)
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        ;(got[partition] = got[partition] || []).push(message)
        if (++count === n) {
          clearTimeout(timer)
          resolve()
        }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  if (count !== n) fail(`consumed ${count} records, want ${n}`)
  return got
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()

  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '86400000' }] }],
    waitForLeaders: true
  })
  if (!created) fail('createTopics said the topic already existed')
  const cfg = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
    includeSynonyms: false
  })
  const retention = cfg.resources[0].configEntries.find(e => e.configName === 'retention.ms')
  if (!retention || retention.configValue !== '86400000') fail(`describeConfigs retention.ms: ${JSON.stringify(retention)}`)

  // Produce: batches of 50 records, each with a key, a header and its own
  // timestamp, with each codec.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const base = Date.now() - 3600 * 1000
  const want = {} // partition -> [{key, value, header, ts}] in offset order
  let n = 0
  for (const [name, codec] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]) {
    for (let b = 0; b < PER_CODEC / 50; b++) {
      const messages = []
      for (let i = 0; i < 50; i++, n++) {
        messages.push({ partition: n % PARTITIONS, key: `k${n}`, value: `${name} value ${n}`, headers: { codec: name }, timestamp: String(base + n) })
      }
      const res = await producer.send({ topic, acks: -1, compression: codec, messages })
      // KafkaJS reports each partition's base offset; that partition's
      // records follow it in the order they were given, right after what
      // the partition already had.
      for (const r of res) {
        if (r.errorCode !== 0) fail(`produce to partition ${r.partition}: error ${r.errorCode}`)
        const have = (want[r.partition] || []).length
        if (r.baseOffset !== String(have)) fail(`partition ${r.partition}: base offset ${r.baseOffset}, want ${have}`)
      }
      for (const m of messages) {
        ;(want[m.partition] = want[m.partition] || []).push({ key: m.key, value: m.value, header: name, ts: m.timestamp })
      }
    }
  }
  await producer.disconnect()

  const got = await consume(n)
  for (const [p, recs] of Object.entries(want)) {
    const g = got[p] || []
    if (g.length !== recs.length) fail(`partition ${p}: consumed ${g.length}, want ${recs.length}`)
    recs.forEach((w, i) => {
      const m = g[i]
      if (m.offset !== String(i) || m.key.toString() !== w.key || m.value.toString() !== w.value ||
          m.timestamp !== w.ts || !m.headers.codec || m.headers.codec.toString() !== w.header) {
        fail(`partition ${p} record ${i}: got offset ${m.offset} key ${m.key} value ${m.value} ts ${m.timestamp}; want ${JSON.stringify(w)}`)
      }
    })
  }

  // Committed offsets are the partition ends; a new session resumes there.
  const ends = await admin.fetchTopicOffsets(topic)
  const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  for (const e of ends) {
    const c = committed[0].partitions.find(x => x.partition === e.partition)
    const wantEnd = String((want[e.partition] || []).length)
    if (e.high !== wantEnd || e.low !== '0') fail(`partition ${e.partition}: offsets ${e.low}-${e.high}, want 0-${wantEnd}`)
    if (!c || c.offset !== wantEnd) fail(`partition ${e.partition}: committed ${JSON.stringify(c)}, want ${wantEnd}`)
  }
  const p2 = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await p2.connect()
  const [after] = await p2.send({ topic, acks: -1, messages: [{ key: 'after', value: 'after the commit' }] })
  await p2.disconnect()
  const again = await consume(1)
  const only = again[after.partition]
  if (!only || only.length !== 1 || only[0].offset !== after.baseOffset || only[0].value.toString() !== 'after the commit') {
    fail(`the group resumed with ${JSON.stringify(again)}, want only offset ${after.baseOffset} of partition ${after.partition}`)
  }

  // Offsets by time: the first record at or after the timestamp.
  for (const [p, recs] of Object.entries(want)) {
    const mid = Math.floor(recs.length / 2)
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, Number(recs[mid].ts))
    const o = byTime.find(x => x.partition === Number(p))
    if (!o || o.offset !== String(mid)) fail(`partition ${p}: offset for ${recs[mid].ts} is ${JSON.stringify(o)}, want ${mid}`)
  }

  const { groups } = await admin.listGroups()
  if (!groups.some(g => g.groupId === group && g.protocolType === 'consumer')) fail(`listGroups: ${JSON.stringify(groups)}`)
  const desc = await admin.describeGroups([group])
  if (desc.groups.length !== 1 || desc.groups[0].state !== 'Empty') fail(`describeGroups: ${JSON.stringify(desc.groups)}`)

  await admin.createPartitions({ topicPartitions: [{ topic, count: PARTITIONS + 1 }] })
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  if (md.topics[0].partitions.length !== PARTITIONS + 1) fail(`after createPartitions: ${md.topics[0].partitions.length} partitions`)
  await admin.deleteTopics({ topics: [topic] })
  const left = await admin.listTopics()
  if (left.includes(topic)) fail(`listTopics after deleteTopics still has ${topic}`)
  await admin.disconnect()
  console.log(`kafkajs: ${n + 1} records produced and consumed, group resumed, admin calls answered`)
}

main().catch(err => {
  console.error('FAIL:', err && err.stack ? err.stack : err)
  process.exit(1)
})
