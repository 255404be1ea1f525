#!/usr/bin/env node
// Runs KafkaJS's transactions against a Vigil broker: a transactional
// producer commits and aborts transactions over two topics (send and
// sendBatch), an exactly-once consume-transform-produce loop commits its
// input offsets in its transactions (sendOffsets), and read_committed
// consumers (readUncommitted: false, KafkaJS's default) must see exactly
// the committed records, each once, checked at every message.
//
// Usage: node txn.js BOOTSTRAP PREFIX
// Exits non-zero, saying why, at the first difference from what a Kafka
// broker does.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, prefix] = process.argv.slice(2)
const IN = prefix + '-in'
const SIDE = prefix + '-side'
const OUT = prefix + '-out'
const PARTITIONS = 3
const group = prefix + '-eos'

function fail (msg) {
  throw new Error(msg)
}

const kafka = new Kafka({
  clientId: 'vigil-e2e-kafkajs-txn',
  brokers: [bootstrap],
  logLevel: logLevel.ERROR,
  retry: { retries: 8, initialRetryTime: 100 }
})

function transactional (id) {
  return kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 30000 })
}

// readAll reads topics from the beginning in a fresh group until it has
// every value of want, failing at once on a value twice, one of forbidden
// or one not wanted; then reads on for a second for late extras.
async function readAll (topics, want, forbidden, label) {
  const consumer = kafka.consumer({ groupId: `${prefix}-check-${label}`, readUncommitted: false, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await consumer.connect()
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true })
  const seen = new Set()
  let err = null
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: read ${seen.size} of ${want.size} records in 60s`)), 60000)
    let settle = null
    const check = (v) => {
      if (seen.has(v)) fail(`${label}: read ${v} twice`)
      if (forbidden.has(v)) fail(`${label}: read ${v}, a record of an aborted transaction`)
      if (!want.has(v)) fail(`${label}: read ${v}, not one of the ${want.size} expected records`)
      seen.add(v)
      if (seen.size === want.size && !settle) {
        settle = setTimeout(() => { clearTimeout(timer); resolve() }, 1000)
      }
    }
    consumer.run({
      eachMessage: async ({ message }) => {
        try {
          check(message.value.toString())
        } catch (e) {
          err = err || e
          clearTimeout(timer)
          reject(e)
        }
      }
    }).catch(reject)
  }).finally(() => consumer.disconnect())
  if (err) throw err
  return seen
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({
    topics: [IN, SIDE, OUT].map(topic => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
    waitForLeaders: true
  })

  // Four transactions over every partition of two topics; the second and
  // fourth are aborted after KafkaJS had every record acknowledged, so
  // they are in the log.
  const producer = transactional(prefix + '-producer')
  await producer.connect()
  const committed = new Set()
  const committedIn = [] // {partition, value} of IN, in offset order per partition
  const aborted = new Set()
  for (const [i, outcome] of ['commit', 'abort', 'commit', 'abort'].entries()) {
    const txn = await producer.transaction()
    const msgs = (topic) => Array.from({ length: 4 * PARTITIONS }, (_, j) => ({
      partition: j % PARTITIONS, key: `k${j}`, value: `${topic} tx${i} rec${j} ${outcome}`
    }))
    const inMsgs = msgs(IN)
    const sideMsgs = msgs(SIDE)
    await txn.send({ topic: IN, acks: -1, messages: inMsgs.slice(0, 6) })
    await txn.sendBatch({ acks: -1, topicMessages: [{ topic: IN, messages: inMsgs.slice(6) }, { topic: SIDE, messages: sideMsgs }] })
    if (outcome === 'commit') {
      await txn.commit()
      for (const m of inMsgs.concat(sideMsgs)) committed.add(m.value)
      for (const m of inMsgs) committedIn.push(m)
    } else {
      await txn.abort()
      for (const m of inMsgs.concat(sideMsgs)) aborted.add(m.value)
    }
    if (txn.isActive()) fail(`tx${i} still active after ${outcome}`)
    console.log(`tx${i}: ${inMsgs.length + sideMsgs.length} records over ${2 * PARTITIONS} partitions, ${outcome === 'commit' ? 'committed' : 'aborted'}`)
  }
  await producer.disconnect()

  await readAll([IN, SIDE], committed, aborted, 'committed')
  console.log(`read_committed: exactly the ${committed.size} committed records`)

  // Consume-transform-produce: each batch's output and its input offsets
  // in one transaction. The first batch is done twice: once aborted
  // (output acknowledged, offsets sent), then committed; its output must
  // be visible once, and the committed offsets those of the commit.
  const eosProducer = transactional(prefix + '-eos')
  await eosProducer.connect()
  const consumer = kafka.consumer({ groupId: group, readUncommitted: false, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic: IN, fromBeginning: true })
  const processed = new Set()
  const nextOffset = {} // partition -> offset after the last input processed
  let batches = 0
  let abortedOnce = false
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`eos: processed ${processed.size} of ${committedIn.length} inputs in 60s`)), 60000)
    consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        try {
          if (batch.messages.length === 0) return
          for (const m of batch.messages) {
            const v = m.value.toString()
            if (aborted.has(v)) fail(`eos: the read_committed input gave ${v}, of an aborted transaction`)
            if (processed.has(v)) fail(`eos: input ${v} read again after its transaction committed`)
          }
          const last = batch.messages[batch.messages.length - 1]
          const offsets = { consumerGroupId: group, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(Number(last.offset) + 1) }] }] }
          const output = batch.messages.map(m => ({ key: m.key, value: 'eos ' + m.value.toString() }))
          if (!abortedOnce) {
            abortedOnce = true
            const txn = await eosProducer.transaction()
            await txn.send({ topic: OUT, acks: -1, messages: output })
            await txn.sendOffsets(offsets)
            await txn.abort()
            console.log(`eos: a batch of ${output.length} inputs aborted after its output was acknowledged, then redone`)
          }
          const txn = await eosProducer.transaction()
          await txn.send({ topic: OUT, acks: -1, messages: output })
          await txn.sendOffsets(offsets)
          await txn.commit()
          for (const m of batch.messages) {
            processed.add(m.value.toString())
            resolveOffset(m.offset)
          }
          nextOffset[batch.partition] = Number(last.offset) + 1
          batches++
          await heartbeat()
          if (processed.size === committedIn.length) {
            clearTimeout(timer)
            resolve()
          }
        } catch (e) {
          clearTimeout(timer)
          reject(e)
          throw e
        }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  await eosProducer.disconnect()
  console.log(`eos: ${processed.size} inputs in ${batches} committed batches`)

  // The group's committed offsets are those of the last commit per
  // partition. Without require_stable (KafkaJS's OffsetFetch has none) a
  // fetch right after the commit may still see the previous offsets,
  // until the marker reaches the offsets partition: poll for a while.
  const deadline = Date.now() + 10000
  let got
  for (;;) {
    const fetched = await admin.fetchOffsets({ groupId: group, topics: [IN] })
    got = Object.fromEntries(fetched[0].partitions.map(p => [p.partition, Number(p.offset)]))
    if (Object.entries(nextOffset).every(([p, o]) => got[p] === o)) break
    if (Date.now() > deadline) fail(`eos: group ${group} committed ${JSON.stringify(got)}, want ${JSON.stringify(nextOffset)}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  const wantOut = new Set(committedIn.map(m => 'eos ' + m.value))
  await readAll([OUT], wantOut, new Set(), 'eos-out')
  console.log(`eos: ${OUT} at read_committed holds each of the ${wantOut.size} inputs exactly once; committed offsets ${JSON.stringify(got)}`)
  await admin.disconnect()
}

main().catch(err => {
  console.error('FAIL:', err && err.stack ? err.stack : err)
  process.exit(1)
})
