/**
 * Download a model folder from the Hugging Face hub (or any server speaking its API).
 *
 * API:
 *   pullModel({ repo, revision?, out?, endpoint?, token?, include?, retries?, progress?, fetchImpl? })
 *     -> Promise<PullResult { dir, commit, files: { name, size, sha256?, skipped }[] }>
 *
 * Protocol (huggingface_hub's): list files with GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true
 * (`siblings[].rfilename`, `size`, `lfs.sha256`), read each file's metadata with HEAD (no redirect following:
 * `X-Linked-Etag` / `X-Linked-Size` for LFS files, `ETag` = git blob sha1 for small ones, `X-Repo-Commit`), then
 * GET {endpoint}/{repo}/resolve/{rev}/{file}. Downloads go to `<file>.part`; an existing .part is resumed with
 * `Range: bytes=<size>-` (a 200 answer restarts it). Each finished file is verified (sha256 for LFS files, git
 * blob sha1 otherwise) before it is renamed into place; a mismatch deletes the .part and fails. Files already
 * present and verified are skipped. `.loom-pull.json` records repo, revision and commit once everything is in.
 * Endpoint: option, else HF_ENDPOINT, else https://huggingface.co. Token: option, else HF_TOKEN.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { Progress } from '../core/progress.ts';

/** Files a model folder needs; weights in other formats (.bin, .pt, .gguf, .onnx) are left out unless asked. */
export const DEFAULT_INCLUDE = ['*.json', '*.safetensors', 'tokenizer.model', '*.txt', '*.md', 'LICENSE*', '*.jinja'];

export interface PullOptions {
  repo: string;
  revision?: string;
  out?: string;
  endpoint?: string;
  token?: string;
  /** Glob patterns (`*` and `?`) matched against the file path; default DEFAULT_INCLUDE. */
  include?: string[];
  /** Retries per file after a network error (each retry resumes). Default 3. */
  retries?: number;
  progress?: boolean;
  fetchImpl?: typeof fetch;
}

export interface PulledFile {
  name: string;
  size: number;
  sha256?: string;
  skipped: boolean;
}

export interface PullResult {
  dir: string;
  commit: string | null;
  files: PulledFile[];
}

interface Sibling {
  rfilename: string;
  size?: number;
  lfs?: { sha256?: string; oid?: string; size?: number };
}

function globToRegExp(glob: string): RegExp {
  const re = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`);
}

export function matchesAny(path: string, patterns: readonly string[]): boolean {
  const base = path.split('/').at(-1) ?? path;
  return patterns.some((p) => {
    const re = globToRegExp(p);
    return re.test(path) || (!p.includes('/') && re.test(base));
  });
}

function cleanEtag(v: string | null): string | null {
  if (!v) return null;
  return v.replace(/^W\//, '').replace(/"/g, '').trim() || null;
}

async function hashFile(path: string, algo: 'sha256' | 'sha1', gitBlob = false): Promise<string> {
  const h = createHash(algo);
  if (gitBlob) h.update(`blob ${statSync(path).size}\0`);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface Expected {
  size: number | null;
  sha256: string | null;
  gitSha1: string | null;
}

export async function pullModel(opts: PullOptions): Promise<PullResult> {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(opts.repo)) {
    throw new LoomError('CONFIG_INVALID', `'${opts.repo}' is not a hub repo id (owner/name)`, { field: 'repo' });
  }
  const endpoint = (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const revision = opts.revision ?? 'main';
  const out = opts.out ?? join('models', opts.repo.replace('/', '--'));
  const token = opts.token ?? process.env.HF_TOKEN;
  const doFetch = opts.fetchImpl ?? fetch;
  const include = opts.include ?? DEFAULT_INCLUDE;
  const retries = opts.retries ?? 3;
  const headers: Record<string, string> = { 'user-agent': 'loom/0.1' };
  if (token) headers.authorization = `Bearer ${token}`;
  const rev = encodeURIComponent(revision);

  const request = async (url: string, init: RequestInit): Promise<Response> => {
    try {
      return await doFetch(url, init);
    } catch (e) {
      throw new LoomError('NETWORK', `cannot reach ${url}: ${(e as Error).message}`, {
        cause: e,
        hint: 'check the network, or set HF_ENDPOINT / --endpoint to a reachable mirror',
      });
    }
  };

  const listUrl = `${endpoint}/api/models/${opts.repo}/revision/${rev}?blobs=true`;
  const listRes = await request(listUrl, { headers });
  if (listRes.status === 401 || listRes.status === 403) {
    throw new LoomError('NETWORK', `${opts.repo}: access denied (${listRes.status})`, {
      hint: 'gated or private repo: pass --token or set HF_TOKEN',
    });
  }
  if (listRes.status === 404) {
    throw new LoomError('NETWORK', `${opts.repo}@${revision} not found on ${endpoint}`, { field: 'repo' });
  }
  if (!listRes.ok) throw new LoomError('NETWORK', `listing ${opts.repo} failed: HTTP ${listRes.status}`);
  const info = (await listRes.json()) as { sha?: string; siblings?: Sibling[] };
  const siblings = (info.siblings ?? []).filter((s) => matchesAny(s.rfilename, include));
  if (siblings.length === 0) {
    throw new LoomError('MODEL_INVALID', `${opts.repo}@${revision} has no files matching ${include.join(', ')}`);
  }
  mkdirSync(out, { recursive: true });
  let commit: string | null = info.sha ?? null;
  const total = siblings.reduce((n, s) => n + (s.lfs?.size ?? s.size ?? 0), 0);
  const progress = new Progress({
    label: `pull ${opts.repo}`,
    total,
    unit: 'bytes',
    silent: opts.progress === false ? true : undefined,
  });
  let doneBytes = 0;
  const results: PulledFile[] = [];

  for (const s of siblings) {
    const name = s.rfilename;
    if (name.split('/').some((p) => p === '..' || p === '')) {
      throw new LoomError('MODEL_INVALID', `refusing unsafe file name from the server: ${name}`);
    }
    const url = `${endpoint}/${opts.repo}/resolve/${rev}/${name.split('/').map(encodeURIComponent).join('/')}`;
    const head = await request(url, { method: 'HEAD', headers, redirect: 'manual' });
    if (head.status >= 400) throw new LoomError('NETWORK', `${name}: HTTP ${head.status} on HEAD ${url}`);
    commit = head.headers.get('x-repo-commit') ?? commit;
    const linked = cleanEtag(head.headers.get('x-linked-etag'));
    const etag = cleanEtag(head.headers.get('etag'));
    const sizeHeader =
      head.headers.get('x-linked-size') ?? (head.status < 300 ? head.headers.get('content-length') : null);
    const exp: Expected = {
      size: s.lfs?.size ?? s.size ?? (sizeHeader ? Number(sizeHeader) : null),
      sha256: s.lfs?.sha256 ?? (linked && /^[0-9a-f]{64}$/.test(linked) ? linked : null),
      gitSha1: !s.lfs && !linked && etag && /^[0-9a-f]{40}$/.test(etag) ? etag : null,
    };
    const target = join(out, name);
    const part = `${target}.part`;
    mkdirSync(dirname(target), { recursive: true });

    if (
      existsSync(target) &&
      (exp.size === null || statSync(target).size === exp.size) &&
      (await verify(target, exp)) === null
    ) {
      doneBytes += statSync(target).size;
      progress.update(doneBytes, { file: name });
      results.push({ name, size: statSync(target).size, sha256: exp.sha256 ?? undefined, skipped: true });
      continue;
    }

    let attempt = 0;
    for (;;) {
      try {
        await downloadTo(url, part, headers, request, (n) => progress.update(doneBytes + n, { file: name }));
        break;
      } catch (e) {
        // Client errors (404, 401) will not change on retry; connection drops and 5xx may.
        const permanent = e instanceof LoomError && /HTTP 4\d\d/.test(e.message);
        if (!(e instanceof LoomError) || e.code !== 'NETWORK' || permanent || attempt >= retries) throw e;
        attempt++;
        await new Promise((r) => setTimeout(r, Math.min(8000, 250 * 2 ** attempt)));
      }
    }
    const size = statSync(part).size;
    if (exp.size !== null && size !== exp.size) {
      rmSync(part, { force: true });
      throw new LoomError('MODEL_INVALID', `${name}: got ${size} bytes, expected ${exp.size}`, { file: target });
    }
    const bad = await verify(part, exp);
    if (bad) {
      rmSync(part, { force: true });
      throw new LoomError('MODEL_INVALID', `${name}: checksum mismatch (${bad})`, {
        file: target,
        hint: 'the download was corrupted or the server changed the file; run the pull again',
      });
    }
    renameSync(part, target);
    doneBytes += size;
    progress.update(doneBytes, { file: name });
    results.push({ name, size, sha256: exp.sha256 ?? undefined, skipped: false });
  }
  progress.done();
  writeJsonAtomic(join(out, '.loom-pull.json'), {
    repo: opts.repo,
    revision,
    commit,
    endpoint,
    files: results.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
  });
  return { dir: out, commit, files: results };
}

/** null when the file matches what the server promised, else a description of the mismatch. */
async function verify(path: string, exp: Expected): Promise<string | null> {
  if (exp.sha256) {
    const got = await hashFile(path, 'sha256');
    return got === exp.sha256 ? null : `sha256 ${got}, expected ${exp.sha256}`;
  }
  if (exp.gitSha1) {
    const got = await hashFile(path, 'sha1', true);
    return got === exp.gitSha1 ? null : `git sha1 ${got}, expected ${exp.gitSha1}`;
  }
  return null;
}

/** GET into `part`, resuming from its current size with a Range request. */
async function downloadTo(
  url: string,
  part: string,
  headers: Record<string, string>,
  request: (url: string, init: RequestInit) => Promise<Response>,
  onBytes: (n: number) => void,
): Promise<void> {
  const have = existsSync(part) ? statSync(part).size : 0;
  const h = { ...headers };
  if (have > 0) h.range = `bytes=${have}-`;
  const res = await request(url, { headers: h });
  if (res.status === 416) return; // nothing left to fetch: the .part is complete
  if (!res.ok) throw new LoomError('NETWORK', `GET ${url}: HTTP ${res.status}`);
  const append = have > 0 && res.status === 206;
  const fd = openSync(part, append ? 'a' : 'w');
  let n = append ? have : 0;
  try {
    if (!res.body) throw new LoomError('NETWORK', `GET ${url}: empty body`);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      writeSync(fd, chunk);
      n += chunk.length;
      onBytes(n);
    }
  } catch (e) {
    if (e instanceof LoomError) throw e;
    throw new LoomError('NETWORK', `download of ${url} interrupted after ${n} bytes: ${(e as Error).message}`, {
      cause: e,
    });
  } finally {
    closeSync(fd);
  }
}
