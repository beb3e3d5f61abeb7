import { test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket, { WebSocketServer } from 'ws'
import { StreamClient } from '../src/index.js'

// A gateway that drains closes its sockets with 1012 (service restart), one going away
// with 1001: the client reconnects at once, without its backoff's wait and without an
// error, keeps its client id, and handles every message once.
test('a 1012 or 1001 close reconnects at once and resumes', async (t) => {
  const closes = 6
  const handshakes = [] // {at, url}
  const closedAt = []
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.after(() => wss.close())
  wss.on('connection', (ws, req) => {
    const n = handshakes.length
    handshakes.push({ at: performance.now(), url: new URL(req.url, 'http://x') })
    if (n >= closes) return // stays open
    ws.send(JSON.stringify({ type: 'message', stream: 's', seq: n + 1, data: n + 1 }))
    closedAt[n] = performance.now()
    ws.close(n % 2 === 0 ? 1012 : 1001, 'gateway draining: reconnect')
  })
  await new Promise((resolve) => wss.once('listening', resolve))
  const errors = []
  const seqs = []
  let done
  const all = new Promise((resolve) => { done = resolve })
  const c = new StreamClient(`ws://127.0.0.1:${wss.address().port}/v1/stream/s`, {
    WebSocket,
    client: 'c1',
    maxBackoff: 5000,
    onError: (e) => errors.push(e),
    onMessage: (m) => { seqs.push(m.seq); if (seqs.length === closes) done() }
  })
  t.after(() => c.close())
  let timer
  const deadline = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${handshakes.length} handshakes and ${seqs.length} messages within 10 s`)), 10000)
  })
  const opened = (async () => {
    while (handshakes.length <= closes) await new Promise((resolve) => setTimeout(resolve, 5))
  })()
  try {
    await Promise.race([Promise.all([all, opened]), deadline])
  } finally {
    clearTimeout(timer)
  }
  assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6])
  assert.equal(errors.length, 0)
  let fastest = Infinity
  for (let i = 1; i <= closes; i++) {
    assert.equal(handshakes[i].url.searchParams.get('client'), 'c1')
    fastest = Math.min(fastest, handshakes[i].at - closedAt[i - 1])
  }
  // A client that waited its backoff (50 ms, then doubling) would never be below it.
  assert.ok(fastest < 50, `the fastest reconnect after 1012/1001 took ${fastest} ms`)
})
