import { test } from 'node:test'
import assert from 'node:assert/strict'
import { StreamClient } from '../src/index.js'

// A WebSocket whose handshake fails with an error event and no close event, as Node 20's
// own WebSocket (node --experimental-websocket) does for a refused connection or a non-101
// answer. The client must try again, as it does after a close.
class ErrorOnly {
  static made = 0
  constructor () {
    ErrorOnly.made++
    setTimeout(() => this.onerror?.({ type: 'error' }), 1)
  }

  send () { throw new Error('not open') }
  close () {}
}

test('a handshake that fails with error and no close is retried', async (t) => {
  const statuses = []
  const c = new StreamClient('ws://127.0.0.1:1/v1/stream/s', {
    WebSocket: ErrorOnly,
    maxBackoff: 20,
    onStatus: (s) => statuses.push(s)
  })
  t.after(() => c.close())
  const deadline = Date.now() + 5000
  while (ErrorOnly.made < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.ok(ErrorOnly.made >= 4, `${ErrorOnly.made} attempts in 5 s`)
  assert.ok(statuses.every((s) => s === 'closed'), statuses.join(','))
})
