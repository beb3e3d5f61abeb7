// Starts a real `holdfast dev`, built from this tree (or $HOLDFAST_BIN), on loopback.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../../..')
let built

/** Builds the holdfast binary once per test process. */
export function binary () {
  if (process.env.HOLDFAST_BIN) return process.env.HOLDFAST_BIN
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-js-bin-'))
    built = join(dir, 'holdfast')
    execFileSync('go', ['build', '-o', built, './cmd/holdfast'], { cwd: root, stdio: 'inherit' })
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  return built
}

/** A free loopback port, so that a restarted server keeps its address. */
export function freePort () {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

export class Dev {
  constructor (port, dir) {
    this.port = port
    this.dir = dir
    this.url = `ws://127.0.0.1:${port}`
  }

  static async start () {
    const d = new Dev(await freePort(), mkdtempSync(join(tmpdir(), 'holdfast-js-')))
    await d.run()
    return d
  }

  /** Starts the process and resolves once it prints that it is ready (30 s at most). */
  run () {
    const p = spawn(binary(), ['dev', '--listen', `127.0.0.1:${this.port}`, '--s3-listen', '127.0.0.1:0',
      '--persist-to', join(this.dir, 'state'), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] })
    this.proc = p
    this.exited = new Promise((resolve) => p.on('exit', resolve))
    return new Promise((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error('holdfast dev not ready in 30 s: ' + out)), 30000)
      p.stdout.on('data', (b) => {
        out += b
        if (out.includes('holdfast dev ready')) { clearTimeout(timer); resolve() }
      })
      p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`holdfast dev exited (${code}): ${out}`)) })
    })
  }

  async stop () {
    if (!this.proc) return
    this.proc.kill('SIGINT')
    await this.exited
    this.proc = null
  }

  async restart () {
    await this.stop()
    await this.run()
  }

  async close () {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Polls cond every 10 ms until it holds, failing after ms. */
export async function until (cond, ms = 10000, what = 'condition') {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
