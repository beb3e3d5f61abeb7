// Node's `eventsource` package against `holdfast dev` built from this tree (HOLDFAST_BIN, or
// built here): a connection cut mid-stream resumes with Last-Event-ID, no gap, no duplicate.
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawn, execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import net from "node:net"
import { EventSource } from "eventsource"

const freePort = () => new Promise((ok) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)) })
})

async function until(what, cond, ms = 20000) {
  const end = Date.now() + ms
  for (;;) {
    if (await cond()) return
    if (Date.now() > end) throw new Error("timed out waiting for " + what)
    await new Promise((r) => setTimeout(r, 20))
  }
}

test("a disconnect mid-stream resumes with no gap and no duplicate", async (t) => {
  const work = mkdtempSync(join(tmpdir(), "hf-es-"))
  let bin = process.env.HOLDFAST_BIN
  if (!bin) {
    bin = join(work, "holdfast")
    execFileSync("go", ["build", "-o", bin, "./cmd/holdfast"], { cwd: resolve(import.meta.dirname, "../..") })
  }
  const [port, s3] = [await freePort(), await freePort()]
  const srv = spawn(bin, ["dev", "--listen", `127.0.0.1:${port}`, "--s3-listen", `127.0.0.1:${s3}`,
    "--persist-to", join(work, "data"), "--log-level", "warn"], { stdio: "inherit" })
  t.after(() => { srv.kill(); rmSync(work, { recursive: true, force: true }) })
  const base = `http://127.0.0.1:${port}`
  await until("the server", async () => { try { return (await fetch(base + "/healthz")).ok } catch { return false } })
  const url = `${base}/v1/stream/es-node`
  const post = async (v) => {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(v) })
    assert.equal(r.status, 204)
  }
  assert.equal((await fetch(url, { method: "PUT", headers: { "Content-Type": "application/json" } })).status, 201)
  for (const v of [1, 2, 3]) await post(v)

  // The first connection is cut right after the event carrying 3.
  let connections = 0
  const lastIds = []
  const cutFetch = async (input, init) => {
    connections++
    lastIds.push(new Headers(init?.headers).get("last-event-id"))
    const res = await fetch(input, init)
    if (connections > 1) return res
    const reader = res.body.getReader()
    let text = ""
    const body = new ReadableStream({
      async pull(ctl) {
        const { value, done } = await reader.read()
        if (done) return ctl.close()
        text += new TextDecoder().decode(value)
        const i = text.indexOf("data:3\n\n")
        if (i >= 0) {
          ctl.enqueue(new TextEncoder().encode(text.slice(0, i + 8)))
          reader.cancel()
          ctl.error(new Error("cut"))
          return
        }
        ctl.enqueue(value)
        text = text.slice(-64)
      },
    })
    return new Response(body, { status: res.status, headers: res.headers })
  }
  const got = []
  const es = new EventSource(url, { fetch: cutFetch })
  t.after(() => es.close())
  es.onmessage = (e) => got.push(JSON.parse(e.data))
  await until("the reconnect", () => connections >= 2 && es.readyState === EventSource.OPEN)
  for (const v of [4, 5, 6]) await post(v)
  await until("six messages", () => got.length >= 6)
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6])
  assert.equal(lastIds[0], null)
  assert.ok(lastIds[1], "the reconnect sent Last-Event-ID")
})
