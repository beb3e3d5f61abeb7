// Starts the Durable Streams Node reference server, file-backed, for go run ./bench/streams.
// Usage: node serve.mjs <port> <dataDir> <longPollTimeoutMs>; prints "ready <baseUrl>".
import { DurableStreamTestServer } from "@durable-streams/server"

const [port, dataDir, longPoll] = process.argv.slice(2)
const server = new DurableStreamTestServer({
  host: "127.0.0.1",
  port: Number(port),
  dataDir,
  longPollTimeout: Number(longPoll || 30000),
  compression: false,
})
await server.start()
console.log(`ready http://127.0.0.1:${port}`)
const stop = async () => { await server.stop(); process.exit(0) }
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
