// durable-stream's own client behaviour, mimicked with `ws`: frames {data, cMsgId,
// clientId}, replies matched by cMsgId, pushes acked by echoing them without "pub".
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { Dev, until } from './server.js'

let dev
before(async () => { dev = await Dev.start() })
after(async () => { await dev?.close() })

function seedClient (subject, onPush) {
  const ws = new WebSocket(`${dev.url}/stream/${subject}?apiKey=any`)
  const waiting = new Map()
  let cMsgId = Math.random()
  const clientId = Math.floor(Math.random() * 1e9)
  ws.on('message', (raw) => {
    const json = JSON.parse(raw)
    if (json.pub) {
      onPush?.(json)
      delete json.pub
      ws.send(JSON.stringify(json)) // the ack
      return
    }
    waiting.get(json.cMsgId)?.(json)
    waiting.delete(json.cMsgId)
  })
  const opened = new Promise((resolve) => ws.on('open', resolve))
  return {
    ws,
    opened,
    send (data) {
      cMsgId++
      const id = cMsgId
      return new Promise((resolve) => {
        waiting.set(id, resolve)
        ws.send(JSON.stringify({ data, cMsgId: id, clientId }))
      })
    }
  }
}

test('a durable-stream client publishes, subscribes and acks', async (t) => {
  const pushes = []
  const a = seedClient('seed', (m) => pushes.push(m))
  const b = seedClient('seed')
  t.after(() => { a.ws.close(); b.ws.close() })
  await Promise.all([a.opened, b.opened])
  const r1 = await b.send({ hello: 1 })
  assert.equal(r1.sequence, 100000000001)
  assert.equal(r1.ip, '127.0.0.1')
  assert.ok(r1.cMsgId % 1 !== 0, 'a float cMsgId comes back as sent')
  await b.send({ hello: 2 })
  const sub = await a.send({ cmd: 'subscribe', startSequence: 0 })
  assert.equal(sub.sequence, 100000000002)
  await until(() => pushes.length === 2, 10000, 'the backlog')
  await b.send({ hello: 3 })
  await until(() => pushes.length === 3, 10000, 'the live message')
  assert.deepEqual(pushes.map((p) => [p.sequence, p.data.hello]), [[100000000001, 1], [100000000002, 2], [100000000003, 3]])
  await b.send({ cmd: 'putState', state: { lock: true } })
  assert.deepEqual((await b.send({ cmd: 'getState' })).state, { lock: true })
})
