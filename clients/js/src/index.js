// Client for Holdfast's durable message streams: GET /v1/stream/{name}, a WebSocket whose
// protocol is described in docs/streams.md. No dependencies; runs in browsers and in
// Node 20+ (which has no global WebSocket: pass one, e.g. the `ws` package's, as
// options.WebSocket).
//
//   const s = new StreamClient('ws://localhost:8787/v1/stream/chat/room1', {
//     client: 'tab-1', onMessage: (m) => console.log(m.seq, m.data) })
//   const seq = await s.publish({ text: 'hi' })
//
// Messages reach onMessage in seq order, one at a time (an async handler is awaited), and
// are acknowledged once it returns. After a drop the client reconnects on its own and
// resumes right after the last message it handled, so a handler never sees a message
// twice from one StreamClient (nor across page loads with a persistent cache).
//
// Publishes are idempotent: each StreamClient is a producer with a random id and numbers
// its publishes (producerEpoch, producerSeq); one not answered yet is sent again, with the
// same numbers, after a reconnect or a publish_failed, and the stream stores it once and
// answers the retry with the seq the original got (docs/streams.md).

/** An error frame from the server, or a request that could not complete. */
export class StreamError extends Error {
  constructor (code, message, frame = {}) {
    super(`${code}: ${message}`)
    this.name = 'StreamError'
    this.code = code
    this.frame = frame
  }
}

const PREFIX = '/v1/stream/'

/** A random producer id: 16 characters of base64url. */
function producerId () {
  const b = new Uint8Array(12)
  globalThis.crypto.getRandomValues(b)
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_')
}

/**
 * A cache of received messages per stream: the last `size` of them and the last seq
 * handled. The store is a Web Storage (localStorage) or anything with get/set (a Map).
 */
class MessageCache {
  constructor (store, size) {
    this.store = store
    this.size = size
    this.mem = new Map()
  }

  key (stream) { return `holdfast:stream:${stream}` }

  load (stream) {
    let v = this.mem.get(stream)
    if (v) return v
    let raw
    if (typeof this.store.getItem === 'function') raw = this.store.getItem(this.key(stream))
    else raw = this.store.get(this.key(stream))
    try { v = typeof raw === 'string' ? JSON.parse(raw) : raw } catch { v = null }
    if (!v || !Array.isArray(v.messages)) v = { last: 0, messages: [] }
    this.mem.set(stream, v)
    return v
  }

  add (msg) {
    const v = this.load(msg.stream)
    if (msg.seq <= v.last) return
    v.messages.push({ seq: msg.seq, time: msg.time, data: msg.data })
    if (v.messages.length > this.size) v.messages.splice(0, v.messages.length - this.size)
    v.last = msg.seq
    if (typeof this.store.setItem === 'function') {
      try { this.store.setItem(this.key(msg.stream), JSON.stringify(v)) } catch { /* quota: keep it in memory */ }
    } else {
      this.store.set(this.key(msg.stream), JSON.stringify(v)) // a copy: clients never share it
    }
  }
}

export class StreamClient {
  /**
   * @param {string} url ws(s)://host/v1/stream/<name>
   * @param {object} [options]
   * @param {Function} [options.WebSocket] WebSocket implementation (default: the global one)
   * @param {string} [options.token] API key, sent as ?token= (browsers cannot set headers)
   * @param {string} [options.client] durable client id: the server stores its acks
   * @param {number|'latest'} [options.from] first seq wanted on the first connection
   * @param {number} [options.window] unacknowledged messages in flight (server default 256)
   * @param {string} [options.group] consumer group: each message goes to one member
   * @param {number} [options.redelivery] ms a delivered message may stay unacknowledged before the
   *   server sends it again: to any member of a group, or on this connection to a durable client
   *   (server default 30000; 100 to 3600000)
   * @param {(msg: {stream: string, seq: number, time: string, data: any}) => any} [options.onMessage]
   * @param {(err: StreamError) => void} [options.onError] errors that answer no request (history_gone),
   *   and policy_violation: a 1008 close, after which the client stops (it is closed).
   *   A 1012 (a gateway draining) or 1001 close is no error: the client reconnects at once.
   * @param {(state: 'open'|'closed') => void} [options.onStatus]
   * @param {boolean|Storage|Map} [options.cache] keep received messages: true uses localStorage when
   *   there is one, else a Map; or pass the store. Resumes after the cached last seq.
   * @param {number} [options.cacheSize] messages kept per stream (default 1000)
   * @param {number} [options.maxBackoff] ms between reconnect attempts at most (default 5000)
   */
  constructor (url, options = {}) {
    const u = new URL(url)
    if (!u.pathname.startsWith(PREFIX) || u.pathname.length <= PREFIX.length) {
      throw new TypeError(`${url} is not a ${PREFIX}<name> URL`)
    }
    this.url = u
    this.primary = decodeURIComponent(u.pathname.slice(PREFIX.length))
    this.opts = options
    this.WS = options.WebSocket || globalThis.WebSocket
    if (typeof this.WS !== 'function') {
      throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. from the "ws" package)')
    }
    this.maxBackoff = options.maxBackoff ?? 5000
    this.last = new Map() // stream -> last seq handled
    this.extra = new Map() // streams added with subscribe() -> from
    this.pending = new Map() // id -> {resolve, reject}
    this.producer = producerId()
    this.epoch = 0
    this.nextSeq = 0
    this.pubs = [] // unanswered publishes, in send order: {data, epoch, seq, sent, resolve, reject}
    this.pubBackoff = 50
    this.outbox = [] // frames waiting for a connection
    this.nextId = 0
    this.closed = false
    this.ws = null
    this.queue = Promise.resolve() // handler chain: messages in order
    if (options.cache) {
      const store = options.cache === true
        ? (globalThis.localStorage ?? new Map())
        : options.cache
      this.cache = new MessageCache(store, options.cacheSize ?? 1000)
      const c = this.cache.load(this.primary)
      if (c.last > 0 && options.from === undefined) this.last.set(this.primary, c.last)
    }
    this._opened = null
    this.opened = new Promise((resolve, reject) => { this._opened = { resolve, reject } })
    this.opened.catch(() => {})
    this.backoff = 50
    this._connect()
  }

  /** Cached messages of a stream (with options.cache), oldest first. */
  cached (stream = this.primary) {
    return this.cache ? this.cache.load(stream).messages.slice() : []
  }

  _url () {
    const u = new URL(this.url)
    const o = this.opts
    const last = this.last.get(this.primary)
    // After a drop: right after the last message handled (a durable client's stored ack
    // may lag behind it by up to 100 ms). First time: options.from, or the server's default.
    if (last !== undefined && !o.group) u.searchParams.set('from', String(last + 1))
    else if (o.from !== undefined) u.searchParams.set('from', String(o.from))
    if (o.client) u.searchParams.set('client', o.client)
    if (o.group) u.searchParams.set('group', o.group)
    if (o.window) u.searchParams.set('window', String(o.window))
    if (o.redelivery) u.searchParams.set('redelivery', `${Math.round(o.redelivery)}ms`)
    if (o.token) u.searchParams.set('token', o.token)
    return u.toString()
  }

  _connect () {
    if (this.closed) return
    let ws
    try {
      ws = new this.WS(this._url())
    } catch (err) {
      this._retry()
      return
    }
    this.ws = ws
    ws.onopen = () => {
      this.backoff = 50
      this.live = true
      for (const [stream, from] of this.extra) this._resubscribe(stream, from)
      const out = this.outbox
      this.outbox = []
      for (const { text, p } of out) {
        ws.send(text)
        if (p) p.sent = true
      }
      for (const p of this.pubs) this._sendPub(p) // what the last connection left unanswered
      this._opened.resolve()
      this.opts.onStatus?.('open')
    }
    ws.onmessage = (ev) => this._frame(ev.data)
    ws.onerror = () => {
      // A handshake that failed (a refused connection, a 503 while a gateway restarts):
      // browsers and the ws package fire close next, but Node 20's own WebSocket fires
      // only error, which left the client waiting forever. Handle it as the close.
      if (this.ws === ws && !this.live) ws.onclose({ code: 1006, reason: '' })
    }
    ws.onclose = (ev) => {
      if (this.ws !== ws) return
      if (ev.code === 1008) {
        // The server refused this connection's terms (too many consumer groups, say): the
        // same handshake would be refused again, so stop instead of reconnecting.
        const err = new StreamError('policy_violation', ev.reason || 'the server refused the connection (1008)')
        this.opts.onError?.(err)
        this.close()
        this.opts.onStatus?.('closed')
        return
      }
      this.ws = null
      this.live = false
      // Requests in flight may or may not have been carried out.
      for (const [id, p] of this.pending) {
        if (!p.sent) continue // still in the outbox: goes out on the next connection
        this.pending.delete(id)
        p.reject(new StreamError('disconnected', 'the connection dropped before the answer; it may or may not have taken effect'))
      }
      this.opts.onStatus?.('closed')
      // 1012 (service restart: a draining gateway) and 1001 (going away) say "reconnect
      // now, elsewhere": no error, no backoff.
      this._retry(ev.code === 1012 || ev.code === 1001)
    }
  }

  _retry (now = false) {
    if (this.closed) return
    let wait = 0
    if (!now) {
      wait = this.backoff
      this.backoff = Math.min(this.backoff * 2, this.maxBackoff)
    }
    this.timer = setTimeout(() => this._connect(), wait)
  }

  _resubscribe (stream, from) {
    const last = this.last.get(stream)
    const args = { stream }
    if (last !== undefined) args.from = last + 1
    else if (from !== undefined) args.from = from
    this._request({ type: 'command', command: 'subscribe', args }).catch(() => {})
  }

  _send (frame, p) {
    const text = JSON.stringify(frame)
    if (this.ws && this.live) {
      this.ws.send(text)
      if (p) p.sent = true
    } else {
      this.outbox.push({ text, p })
    }
  }

  _request (frame) {
    if (this.closed) return Promise.reject(new StreamError('closed', 'the client is closed'))
    const id = String(++this.nextId)
    return new Promise((resolve, reject) => {
      const p = { resolve, reject, sent: false }
      this.pending.set(id, p)
      this._send({ ...frame, id }, p)
    })
  }

  _frame (text) {
    let f
    try { f = JSON.parse(typeof text === 'string' ? text : String(text)) } catch { return }
    if (!f || typeof f !== 'object') return
    switch (f.type) {
      case 'message': {
        this.queue = this.queue.then(() => this._deliver(f))
        return
      }
      case 'published':
      case 'reply':
      case 'error': {
        if (typeof f.id === 'string' && f.id.startsWith('p')) {
          this._pubAnswer(f)
          return
        }
        const p = f.id !== undefined && this.pending.get(f.id)
        if (p) {
          this.pending.delete(f.id)
          if (f.type === 'error') p.reject(new StreamError(f.code, f.message, f))
          else p.resolve(f.type === 'published' ? f.seq : f.result)
        } else if (f.type === 'error') {
          this.opts.onError?.(new StreamError(f.code, f.message, f))
        }
      }
    }
  }

  async _deliver (f) {
    const last = this.last.get(f.stream)
    const ws = this.ws
    // In a group, seqs arrive out of order (redeliveries): every message is handed over.
    if (this.opts.group || last === undefined || f.seq > last) {
      const msg = { stream: f.stream, seq: f.seq, time: f.time, data: f.data }
      try {
        await this.opts.onMessage?.(msg)
      } catch (err) {
        // A handler that throws does not stop the stream; the message counts as handled.
        queueMicrotask(() => { throw err })
      }
      if (!this.opts.group || last === undefined || f.seq > last) this.last.set(f.stream, f.seq)
      this.cache?.add(msg)
    }
    // Acks are cumulative and only valid on the connection that delivered the message.
    if (ws && ws === this.ws && this.live) ws.send(JSON.stringify({ type: 'ack', seq: f.seq, stream: f.stream }))
  }

  /** Resolves once the first connection is open. */
  ready () { return this.opened }

  /**
   * Appends data (any JSON value) to the stream; resolves with its seq once durable. It is
   * stored once however the connection fares: sent again after a reconnect or a
   * publish_failed, with the same producer numbers, until answered (or close()).
   */
  publish (data) {
    if (data === undefined) return Promise.reject(new TypeError('publish needs data'))
    if (this.closed) return Promise.reject(new StreamError('closed', 'the client is closed'))
    return new Promise((resolve, reject) => {
      const p = { data, epoch: this.epoch, seq: this.nextSeq++, sent: 0, resolve, reject }
      this.pubs.push(p)
      if (this.ws && this.live) this._sendPub(p)
    })
  }

  _pubId (p) { return `p${p.epoch}.${p.seq}` }

  _sendPub (p) {
    p.sent++
    this.ws.send(JSON.stringify({
      type: 'publish', id: this._pubId(p), data: p.data, producerId: this.producer, producerEpoch: p.epoch, producerSeq: p.seq
    }))
  }

  // An answer to a publish: see the comment of the Go client's publish.go, which this follows.
  _pubAnswer (f) {
    const i = this.pubs.findIndex((p) => this._pubId(p) === f.id)
    if (i < 0) return // an answer to a copy of a publish answered already, or renumbered
    const p = this.pubs[i]
    const earlier = this.pubs.slice(0, i).some((q) => q.epoch === p.epoch)
    const hole = f.code === 'producer_seq_gap' || f.code === 'producer_unknown'
    if (f.type === 'published') {
      this.pubBackoff = 50
      this.pubs.splice(i, 1)
      p.resolve(f.seq)
    } else if (f.code === 'publish_failed' || f.code === 'unavailable' || (hole && earlier)) {
      this._scheduleResend() // may or may not be stored: the same numbers again
    } else if (f.code === 'producer_seq_gap' || (f.code === 'producer_unknown' && p.sent === 1)) {
      // Nothing before it can fill the hole, and it was not stored: it and those after it
      // start a new epoch.
      this.epoch++
      this.nextSeq = 0
      for (const q of this.pubs.slice(i)) {
        q.epoch = this.epoch
        q.seq = this.nextSeq++
        q.sent = 0
        if (this.ws && this.live) this._sendPub(q)
      }
    } else { // refused, or (producer_unknown of a retry) perhaps stored
      this.pubs.splice(i, 1)
      p.reject(new StreamError(f.code, f.message, f))
    }
  }

  _scheduleResend () {
    if (this.resendTimer) return
    const wait = this.pubBackoff
    this.pubBackoff = Math.min(this.pubBackoff * 2, this.maxBackoff)
    this.resendTimer = setTimeout(() => {
      this.resendTimer = null
      if (this.ws && this.live) for (const p of this.pubs) this._sendPub(p)
    }, wait)
  }

  /** Runs a command (getStreamInfo, getState, putState, deleteMessages, ...). */
  command (name, args = {}) {
    return this._request({ type: 'command', command: name, args })
  }

  /** Adds another stream to this connection, kept across reconnects. */
  async subscribe (stream, from) {
    this.extra.set(stream, from)
    const args = { stream }
    if (from !== undefined) args.from = from
    try {
      return await this.command('subscribe', args)
    } catch (err) {
      if (err.code !== 'already_subscribed') this.extra.delete(stream)
      throw err
    }
  }

  async unsubscribe (stream) {
    this.extra.delete(stream)
    return this.command('unsubscribe', { stream })
  }

  /** Closes the connection for good; pending requests are rejected. */
  close () {
    this.closed = true
    clearTimeout(this.timer)
    clearTimeout(this.resendTimer)
    for (const [, p] of this.pending) p.reject(new StreamError('closed', 'the client is closed'))
    this.pending.clear()
    for (const p of this.pubs) p.reject(new StreamError('closed', 'the client is closed'))
    this.pubs = []
    this._opened.reject(new StreamError('closed', 'the client is closed'))
    const ws = this.ws
    this.ws = null
    if (ws) ws.close()
  }
}
