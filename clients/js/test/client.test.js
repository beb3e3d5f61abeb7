import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { StreamClient, StreamError } from '../src/index.js'
import { Dev, until } from './server.js'

let dev
before(async () => { dev = await Dev.start() })
after(async () => { await dev?.close() })

function open (name, opts = {}) {
  const c = new StreamClient(`${dev.url}/v1/stream/${name}`, { WebSocket, ...opts })
  return c
}

test('publish resolves with the seq; subscribers get every message in order, acked', async (t) => {
  const got = []
  const sub = open('js/order', { window: 2, onMessage: (m) => { got.push(m) } })
  const pub = open('js/order', { from: 'latest' })
  t.after(() => { sub.close(); pub.close() })
  await Promise.all([sub.ready(), pub.ready()])
  const seqs = await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publish({ n: i })))
  assert.deepEqual(seqs, Array.from({ length: 20 }, (_, i) => i + 1))
  // window 2: all 20 arrive only if acks flow.
  await until(() => got.length === 20, 10000, '20 messages')
  got.forEach((m, i) => {
    assert.equal(m.seq, i + 1)
    assert.deepEqual(m.data, { n: i })
    assert.equal(m.stream, 'js/order')
  })
})

test('commands: state, stream info, errors', async (t) => {
  const c = open('js/cmd')
  t.after(() => c.close())
  await c.publish('x')
  const info = await c.command('getStreamInfo')
  assert.equal(info.lastSeq, 1)
  await c.command('putState', { state: { a: 1 } })
  assert.deepEqual((await c.command('getState')).state, { a: 1 })
  await assert.rejects(c.command('nope'), (e) => e instanceof StreamError && e.code === 'unknown_command')
})

test('async handlers run one at a time, in order', async (t) => {
  const got = []
  let busy = false
  const c = open('js/async', {
    onMessage: async (m) => {
      assert.equal(busy, false)
      busy = true
      await new Promise((resolve) => setImmediate(resolve))
      got.push(m.seq)
      busy = false
    }
  })
  t.after(() => c.close())
  for (let i = 0; i < 10; i++) await c.publish(i)
  await until(() => got.length === 10)
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
})

test('local cache: a new client with the same store resumes after the cached messages', async (t) => {
  const store = new Map()
  const got1 = []
  const a = open('js/cache', { cache: store, onMessage: (m) => { got1.push(m.seq) } })
  await a.publish('one')
  await a.publish('two')
  await until(() => got1.length === 2)
  a.close()
  const peek = open('js/cache', { cache: store })
  assert.deepEqual(peek.cached().map((m) => m.data), ['one', 'two'])
  peek.close()
  const got2 = []
  const b = open('js/cache', { cache: store, onMessage: (m) => { got2.push(m.data) } })
  t.after(() => b.close())
  await b.publish('three')
  await until(() => got2.length === 1)
  assert.deepEqual(got2, ['three'])
  assert.deepEqual(b.cached().map((m) => m.seq), [1, 2, 3])
})

test('reconnects after a restart and resumes without gap or repeat', async (t) => {
  const got = []
  let opens = 0
  const c = open('js/restart', { client: 'r1', onMessage: (m) => { got.push(m.seq) }, onStatus: (s) => { if (s === 'open') opens++ } })
  t.after(() => c.close())
  for (let i = 0; i < 5; i++) await c.publish(i)
  await until(() => got.length === 5)
  await dev.restart()
  await until(() => opens >= 2, 20000, 'reconnect')
  for (let i = 5; i < 10; i++) await c.publish(i)
  await until(() => got.length === 10)
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
})

test('a consumer group shares the messages between its members', async (t) => {
  const got = new Map()
  const member = (id) => open('js/group', { group: 'workers', client: id, window: 2, onMessage: (m) => { got.set(m.seq, [...(got.get(m.seq) ?? []), id]) } })
  const a = member('a')
  const b = member('b')
  const pub = open('js/group', { from: 'latest' })
  t.after(() => { a.close(); b.close(); pub.close() })
  await Promise.all([a.ready(), b.ready(), pub.ready()])
  for (let i = 0; i < 20; i++) await pub.publish(i)
  await until(() => got.size === 20, 10000, '20 messages over the group')
  for (const [seq, who] of got) assert.equal(who.length, 1, `seq ${seq} went to ${who}`)
})

test('a group message held past the redelivery time goes to another member', async (t) => {
  let release
  const held = new Promise((resolve) => { release = resolve })
  const got = new Map()
  const note = (id, m) => got.set(m.seq, [...(got.get(m.seq) ?? []), id])
  let first
  const a = open('js/group-redo', {
    group: 'w', client: 'a', window: 1, redelivery: 200,
    onMessage: async (m) => { note('a', m); if (first === undefined) { first = m.seq; await held } }
  })
  const pub = open('js/group-redo', { from: 'latest' })
  t.after(() => { release(); a.close(); pub.close() })
  await Promise.all([a.ready(), pub.ready()])
  for (let i = 0; i < 5; i++) await pub.publish(i)
  await until(() => first !== undefined, 10000, 'a to take a message')
  const b = open('js/group-redo', { group: 'w', client: 'b', redelivery: 200, onMessage: (m) => note('b', m) })
  t.after(() => b.close())
  await until(() => got.size === 5 && got.get(first).length === 2, 10000, 'every message, the held one twice')
  assert.deepEqual(got.get(first), ['a', 'b'])
  for (const [seq, who] of got) if (seq !== first) assert.deepEqual(who, ['b'], `seq ${seq}`)
})

// A WebSocket proxy to the dev server that, the first `drops` times a "published" frame
// comes back, closes both connections instead of relaying it: the message is stored and its
// answer lost.
async function dropProxy (drops) {
  const { WebSocketServer } = await import('ws')
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((resolve) => wss.once('listening', resolve))
  const state = { left: drops, dropped: 0 }
  wss.on('connection', (client, req) => {
    const server = new WebSocket(dev.url + req.url)
    const queued = []
    const close = () => { client.terminate(); server.terminate() }
    server.on('open', () => { for (const m of queued.splice(0)) server.send(m) })
    client.on('message', (m) => { if (server.readyState === WebSocket.OPEN) server.send(m.toString()); else queued.push(m.toString()) })
    server.on('message', (m) => {
      const text = m.toString()
      if (text.includes('"type":"published"') && state.left > 0) {
        state.left--
        state.dropped++
        close() // stored, and the answer never arrives
        return
      }
      client.send(text)
    })
    client.on('close', close)
    server.on('close', close)
    server.on('error', close)
    client.on('error', close)
  })
  return { url: `ws://127.0.0.1:${wss.address().port}`, state, close: () => wss.close() }
}

test('a publish whose answer is lost is sent again and stored once, with its first seq', async (t) => {
  const proxy = await dropProxy(3)
  const pub = new StreamClient(`${proxy.url}/v1/stream/js/retry`, { WebSocket, maxBackoff: 100 })
  t.after(() => { pub.close(); proxy.close() })
  assert.equal(await pub.publish('first'), 1)
  const n = 40
  const seqs = await Promise.all(Array.from({ length: n }, (_, i) => pub.publish({ i })))
  assert.equal(proxy.state.dropped, 3)
  const got = new Map()
  const sub = open('js/retry', { from: 1, onMessage: (m) => { got.set(m.seq, m.data) } })
  t.after(() => sub.close())
  await until(() => got.size >= n + 1, 10000, `${n + 1} messages`)
  const info = await sub.command('getStreamInfo')
  assert.equal(info.lastSeq, n + 1, 'every message stored once')
  assert.equal(got.get(1), 'first')
  seqs.forEach((seq, i) => assert.deepEqual(got.get(seq), { i }, `publish ${i} at seq ${seq}`))
})

test('a JSON append that is not UTF-8 is refused, and a strict subscriber from seq 1 never meets it (issue 13)', async (t) => {
  const url = dev.url.replace('ws://', 'http://') + '/v1/stream/js/utf8'
  const json = { 'Content-Type': 'application/json' }
  assert.equal((await fetch(url, { method: 'PUT', headers: json })).status, 201)
  const got = []
  let opens = 0
  const sub = open('js/utf8', { from: 1, onMessage: (m) => { got.push(m) }, onStatus: (s) => { if (s === 'open') opens++ } })
  t.after(() => sub.close())
  await sub.ready()
  // ws, like a browser, fails the whole connection on a text frame that is not UTF-8.
  const bad = await fetch(url, { method: 'POST', headers: json, body: Buffer.from([0x22, 0xff, 0xfe, 0x22]) })
  assert.equal(bad.status, 400)
  assert.equal((await bad.json()).error.code, 'invalid_utf8')
  assert.equal((await fetch(url, { method: 'POST', headers: json, body: '{"ok":true}' })).status, 204)
  await until(() => got.length === 1, 10000, 'the one stored message')
  assert.equal(got[0].seq, 1, 'nothing was stored before it, not even for the create')
  assert.deepEqual(got[0].data, { ok: true })
  assert.equal(opens, 1, 'the connection never failed')
  const read = await fetch(url + '?offset=-1')
  assert.deepEqual(await read.json(), [{ ok: true }])
})
