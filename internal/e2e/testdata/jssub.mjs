// A durable subscriber of the fault harness (faults_test.go), on the repository's JS
// client (clients/js) with Node's own WebSocket (node --experimental-websocket on Node 20).
//
//   node --experimental-websocket jssub.mjs <clients/js/src/index.js> <ws url> <client id>
//
// Prints one JSON line per event: {"ev":"open"|"closed","t":<ms>}, {"ev":"msg","seq":N,
// "id":"<data.id>"} and {"ev":"error","code":"..."}. Closes the client and exits when
// stdin ends.
const [clientPath, url, client] = process.argv.slice(2)
const { StreamClient } = await import(clientPath)

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const s = new StreamClient(url, {
  WebSocket: globalThis.WebSocket,
  client,
  onMessage: (m) => out({ ev: 'msg', seq: m.seq, id: m.data?.id }),
  onError: (e) => out({ ev: 'error', code: e.code, message: e.message }),
  onStatus: (st) => out({ ev: st, t: Date.now() })
})
process.stdin.resume()
process.stdin.on('end', () => {
  s.close()
  process.exit(0)
})
