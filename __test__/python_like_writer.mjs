// A stand-in for huggingface_hub 0.36's downloader, run as a separate process by hub.spec.ts so
// the tests need no Python. For each job it does what `_hf_hub_download_to_cache_dir` and
// `_download_to_tmp_and_move` do: return if the blob exists; take the exclusive lock on
// `<cache>/.locks/models--org--name/<etag>.lock` (polled every 50 ms, as filelock polls flock);
// check the blob again; open `<blob>.incomplete` for appending and resume from its size with a
// Range request; append (slowly here, so the other client overlaps); check the size (Python's
// "consistency check", no hash); rename to the blob; release the lock.
//
// argv[2]: JSON { jobs: [{ file, lock, blob, url, size }], chunk, delayMs, agent }
// stdout: one JSON event per line: waiting | locked | exists | writing | done, with the job's file.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'

const native = createRequire(import.meta.url)('../native.js')
const { jobs, chunk, delayMs, agent } = JSON.parse(process.argv[2])
const emit = (event, file, extra = {}) => process.stdout.write(`${JSON.stringify({ event, file, ...extra })}\n`)

async function lock(path, file) {
  let waited = false
  for (;;) {
    const held = native.tryLockFile(path)
    if (held) return held
    if (!waited) emit('waiting', file)
    waited = true
    await sleep(50)
  }
}

for (const job of jobs) {
  if (fs.existsSync(job.blob)) {
    emit('exists', job.file)
    continue
  }
  const held = await lock(job.lock, job.file)
  try {
    emit('locked', job.file)
    if (fs.existsSync(job.blob)) {
      emit('exists', job.file)
      continue
    }
    const partial = `${job.blob}.incomplete`
    const fd = fs.openSync(partial, 'a')
    try {
      const resume = fs.fstatSync(fd).size
      const res = await fetch(job.url, { headers: { 'user-agent': agent, ...(resume > 0 ? { range: `bytes=${resume}-` } : {}) } })
      if (res.status !== (resume > 0 ? 206 : 200)) throw new Error(`${job.url} answered ${res.status}`)
      const body = Buffer.from(await res.arrayBuffer())
      for (let at = 0; at < body.length; at += chunk) {
        fs.writeSync(fd, body.subarray(at, at + chunk))
        if (at === 0) emit('writing', job.file, { resume })
        await sleep(delayMs)
      }
      const size = fs.fstatSync(fd).size
      if (size !== job.size) throw new Error(`consistency check failed: ${job.file} should be ${job.size} bytes but has ${size}`)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(partial, job.blob)
    emit('done', job.file)
  } finally {
    held.release()
  }
}
