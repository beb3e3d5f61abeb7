import { test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket, { WebSocketServer } from 'ws'
import { StreamClient } from '../src/index.js'

// A server that refuses every connection with 1008 (policy violation, as Holdfast does for
// a stream's 257th consumer group): reconnecting would be refused again, so the client
// reports policy_violation once and closes instead of redialing.
test('a 1008 close stops the client and is reported as policy_violation', async (t) => {
  let handshakes = 0
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.after(() => wss.close())
  wss.on('connection', (ws) => {
    handshakes++
    ws.close(1008, 'too_many_groups: at most 256')
  })
  await new Promise((resolve) => wss.once('listening', resolve))
  const errors = []
  let reported
  const got = new Promise((resolve) => { reported = resolve })
  const c = new StreamClient(`ws://127.0.0.1:${wss.address().port}/v1/stream/s`, {
    WebSocket,
    onError: (e) => { errors.push(e); reported() }
  })
  t.after(() => c.close())
  let timer
  const deadline = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('no policy_violation within 10 s')), 10000)
  })
  try {
    await Promise.race([got, deadline])
  } finally {
    clearTimeout(timer)
  }
  assert.equal(errors.length, 1)
  assert.equal(errors[0].code, 'policy_violation')
  assert.match(errors[0].message, /too_many_groups/)
  assert.equal(c.closed, true)
  assert.equal(handshakes, 1)
  await assert.rejects(c.publish({ n: 1 }), (e) => e.code === 'closed')
})
