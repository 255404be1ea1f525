#!/usr/bin/env node
// KafkaJS over vigil's SASL_SSL listener (internal/e2e/
// security_clients_test.go): SCRAM authentication, an acks=all producer,
// a consumer group that reads everything back and commits, and a wrong
// password refused with KafkaJS's SASL authentication error. KafkaJS is
// the one testdata/kafkajs installs with npm ci.
//
// Usage: node kafkajs_sasl.js BOOTSTRAP MECHANISM USER PASSWORD CAFILE TOPIC COUNT
// MECHANISM is scram-sha-256 or scram-sha-512 (KafkaJS's names). Exits
// non-zero, saying why, at the first failure.
'use strict'

const fs = require('fs')
const path = require('path')
const { Kafka, logLevel } = require(path.join(__dirname, '..', 'kafkajs', 'node_modules', 'kafkajs'))

const [bootstrap, mechanism, username, password, cafile, topic, countArg] = process.argv.slice(2)
const count = Number(countArg)
const ssl = { ca: [fs.readFileSync(cafile, 'utf-8')] }

function client (pass) {
  return new Kafka({
    clientId: 'vigil-e2e-kafkajs-sasl',
    brokers: [bootstrap],
    ssl,
    sasl: { mechanism, username, password: pass },
    logLevel: logLevel.NOTHING, // failures are reported below
    retry: { retries: 2, initialRetryTime: 100 }
  })
}

async function main () {
  const kafka = client(password)
  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let i = 0; i < count; i++) messages.push({ value: `kafkajs ${mechanism} ${i}` })
  await producer.send({ topic, acks: -1, messages })
  await producer.disconnect()

  const group = topic + '-group'
  const consumer = kafka.consumer({ groupId: group, heartbeatInterval: 500, rebalanceTimeout: 10000 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  let got = 0
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${got} of ${count} messages in 30s`)), 30000)
    consumer.run({
      eachMessage: async () => {
        if (++got === count) {
          clearTimeout(timer)
          resolve()
        }
      }
    }).catch(reject)
  })
  await consumer.disconnect() // commits what was consumed

  const admin = kafka.admin()
  await admin.connect()
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  await admin.disconnect()
  const sum = committed.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0)
  if (got !== count || sum !== count) throw new Error(`consumed ${got}, committed offsets add up to ${sum}, want ${count}`)

  // A wrong password: KafkaJS's SASL error, with the broker's message.
  const wrong = client(password + '-wrong').admin()
  try {
    await wrong.connect()
    throw new Error('a wrong password was accepted')
  } catch (e) {
    if (e.name !== 'KafkaJSSASLAuthenticationError' || !/Authentication failed/.test(e.message)) {
      throw new Error(`wrong password: ${e.name}: ${e.message}, want KafkaJSSASLAuthenticationError`)
    }
  }
  console.log(`KafkaJS ${mechanism}: produced, consumed and committed ${count} messages; a wrong password is refused`)
}

main().catch(e => {
  console.error(`FAIL: ${e.name}: ${e.message}`)
  process.exit(1)
})
