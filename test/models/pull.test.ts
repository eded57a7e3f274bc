import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LoomError } from '../../src/core/errors.ts';
import { matchesAny, pullModel } from '../../src/models/pull.ts';

// A tiny stand-in for the hub: the listing API, /resolve/ with HF's headers (LFS files redirect to a "CDN"
// with X-Linked-Etag = sha256; small files answer directly with ETag = git blob sha1), and Range support.
const weights = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
const files: Record<string, { body: Buffer; lfs: boolean }> = {
  'config.json': { body: Buffer.from('{"model_type":"llama"}\n'), lfs: false },
  'model.safetensors': { body: weights, lfs: true },
  'sub/notes.md': { body: Buffer.from('# notes\n'), lfs: false },
  'pytorch_model.bin': { body: Buffer.from('not wanted'), lfs: true },
};
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

const state = {
  /** Cut the connection after this many bytes on the next CDN GET (once). */
  cutAfter: 0,
  /** Advertise a wrong sha256 for the LFS file. */
  wrongSha: false,
  ranges: [] as string[],
};

let server: Server;
let endpoint = '';

function serveBody(req: IncomingMessage, res: ServerResponse, body: Buffer, extra: Record<string, string>): void {
  const range = req.headers.range;
  let start = 0;
  if (range) {
    state.ranges.push(range);
    start = Number(/bytes=(\d+)-/.exec(range)?.[1] ?? 0);
    if (start >= body.length) {
      res.writeHead(416, extra).end();
      return;
    }
    res.writeHead(206, {
      ...extra,
      'content-length': body.length - start,
      'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
    });
  } else res.writeHead(200, { ...extra, 'content-length': body.length });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const rest = body.subarray(start);
  if (state.cutAfter > 0) {
    const n = state.cutAfter;
    state.cutAfter = 0;
    res.write(rest.subarray(0, n), () => res.socket?.destroy());
    return;
  }
  res.end(rest);
}

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/api/models/acme/tiny/revision/main') {
      const siblings = Object.entries(files).map(([rfilename, f]) => ({
        rfilename,
        size: f.body.length,
        ...(f.lfs ? { lfs: { sha256: state.wrongSha ? '0'.repeat(64) : sha256(f.body), size: f.body.length } } : {}),
      }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha: 'c0ffee', siblings }));
      return;
    }
    const m = /^\/acme\/tiny\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (m) {
      const name = decodeURIComponent(m[1] as string);
      const f = files[name];
      if (!f) {
        res.writeHead(404).end();
        return;
      }
      if (f.lfs) {
        res
          .writeHead(302, {
            location: `/cdn/${name}`,
            'x-linked-etag': `"${state.wrongSha ? '0'.repeat(64) : sha256(f.body)}"`,
            'x-linked-size': String(f.body.length),
            'x-repo-commit': 'c0ffee',
          })
          .end();
        return;
      }
      serveBody(req, res, f.body, { etag: `"${gitSha1(f.body)}"`, 'x-repo-commit': 'c0ffee' });
      return;
    }
    const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
    const f = cdn ? files[decodeURIComponent(cdn[1] as string)] : undefined;
    if (f) {
      serveBody(req, res, f.body, {});
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test('glob include patterns', () => {
  assert.ok(matchesAny('model-00001-of-00002.safetensors', ['*.safetensors']));
  assert.ok(matchesAny('sub/notes.md', ['*.md']));
  assert.ok(!matchesAny('pytorch_model.bin', ['*.json', '*.safetensors']));
});

test('pull downloads the wanted files, verifies them, records the commit', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'loom-pull-')), 'm');
  const r = await pullModel({ repo: 'acme/tiny', endpoint, out, progress: false });
  assert.equal(r.commit, 'c0ffee');
  assert.deepEqual(r.files.map((f) => f.name).sort(), ['config.json', 'model.safetensors', 'sub/notes.md']);
  assert.deepEqual(readFileSync(join(out, 'model.safetensors')), weights);
  assert.equal(readFileSync(join(out, 'sub/notes.md'), 'utf8'), '# notes\n');
  assert.equal(existsSync(join(out, 'pytorch_model.bin')), false);
  assert.equal(JSON.parse(readFileSync(join(out, '.loom-pull.json'), 'utf8')).commit, 'c0ffee');
  // A second pull finds everything in place.
  const again = await pullModel({ repo: 'acme/tiny', endpoint, out, progress: false });
  assert.ok(again.files.every((f) => f.skipped));
});

test('an interrupted download leaves a .part that the next pull resumes with a Range request', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'loom-pull-')), 'm');
  state.cutAfter = 100_000;
  state.ranges = [];
  await assert.rejects(
    pullModel({ repo: 'acme/tiny', endpoint, out, retries: 0, progress: false, include: ['*.safetensors'] }),
    (e: unknown) => e instanceof LoomError && e.code === 'NETWORK',
  );
  const partSize = readFileSync(join(out, 'model.safetensors.part')).length;
  assert.ok(partSize >= 100_000 && partSize < weights.length, `part ${partSize}`);
  await pullModel({ repo: 'acme/tiny', endpoint, out, progress: false, include: ['*.safetensors'] });
  assert.deepEqual(state.ranges, [`bytes=${partSize}-`]);
  assert.deepEqual(readFileSync(join(out, 'model.safetensors')), weights);
  assert.equal(existsSync(join(out, 'model.safetensors.part')), false);
});

test('retries resume within one pull', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'loom-pull-')), 'm');
  state.cutAfter = 50_000;
  state.ranges = [];
  await pullModel({ repo: 'acme/tiny', endpoint, out, progress: false, include: ['*.safetensors'], retries: 1 });
  assert.equal(state.ranges.length, 1);
  assert.deepEqual(readFileSync(join(out, 'model.safetensors')), weights);
});

test('a checksum mismatch fails, names the file, and keeps nothing', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'loom-pull-')), 'm');
  state.wrongSha = true;
  try {
    await assert.rejects(
      pullModel({ repo: 'acme/tiny', endpoint, out, progress: false, include: ['*.safetensors'] }),
      (e: unknown) =>
        e instanceof LoomError &&
        e.code === 'MODEL_INVALID' &&
        /checksum mismatch/.test(e.message) &&
        /model\.safetensors/.test(String(e.file)),
    );
  } finally {
    state.wrongSha = false;
  }
  assert.equal(existsSync(join(out, 'model.safetensors')), false);
  assert.equal(existsSync(join(out, 'model.safetensors.part')), false);
});

test('a corrupted small file is caught by its git blob sha1', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'loom-pull-')), 'm');
  await pullModel({ repo: 'acme/tiny', endpoint, out, progress: false, include: ['config.json'] });
  writeFileSync(join(out, 'config.json'), '{"model_type":"llamb"}\n');
  // Same size but different content: re-downloaded, not skipped.
  const r = await pullModel({ repo: 'acme/tiny', endpoint, out, progress: false, include: ['config.json'] });
  assert.equal(r.files[0]?.skipped, false);
  assert.equal(readFileSync(join(out, 'config.json'), 'utf8'), '{"model_type":"llama"}\n');
});

test('unknown repo is a NETWORK error', async () => {
  await assert.rejects(
    pullModel({ repo: 'acme/missing', endpoint, out: mkdtempSync(join(tmpdir(), 'loom-pull-')), progress: false }),
    (e: unknown) => e instanceof LoomError && e.code === 'NETWORK' && /not found/.test(e.message),
  );
});
