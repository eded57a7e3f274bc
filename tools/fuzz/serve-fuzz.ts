/**
 * A seeded HTTP fuzzer for `loom serve`, shared by the bounded test (test/serve/fuzz.test.ts, a few hundred
 * requests) and bench/serve/fuzz.ts (10,000). Each request is one of: malformed JSON, wrong field types, invalid
 * parameter values, huge bodies, path traversal in model / adapter names and URLs, wrong methods and content types,
 * disconnects mid-stream and mid-upload, and valid small requests (which must succeed). Invariants checked on every
 * answer: an HTTP status, and for every error a JSON body in OpenAI's shape {"error":{"message","type","param","code"}}
 * with a non-empty message; valid requests answer 200 with a choice. Violations are collected, not thrown.
 */
import { request } from 'node:http';
import { Mulberry32 } from '../../src/core/rng.ts';

export interface FuzzOptions {
  /** Base URL without /v1. */
  url: string;
  /** A served model name (valid requests use it). */
  model: string;
  count: number;
  seed?: number;
  /** Requests in flight at once. */
  parallel?: number;
  /** The server's limits.max_body_bytes: "huge" bodies are made bigger than this. */
  maxBodyBytes: number;
}

export interface FuzzReport {
  requests: number;
  byKind: Record<string, number>;
  byStatus: Record<string, number>;
  /** 500s whose code is internal_error: a bug somewhere even if the server survived. */
  internalErrors: number;
  violations: string[];
  seconds: number;
}

type Case = { kind: string; method?: string; path: string; body?: string | Buffer; contentType?: string | null } & (
  | { expect: 'error' | 'any' | 'ok' }
  | { expect: 'disconnect'; after: 'first-byte' | 'upload' }
);

const WRONG: unknown[] = [null, true, 0, -1, 1e308, 'x', '', [], [1, 'a'], {}, { a: { b: [] } }, '9'.repeat(400), -0.5];
const TRAVERSAL = [
  'tiny:../../etc/passwd',
  '../tiny',
  '..',
  '/etc/passwd',
  'tiny:..%2f..%2fetc%2fpasswd',
  'tiny:%2e%2e/%2e%2e/x',
  'tiny:',
  ':tiny',
  'tiny::x',
  'tiny:a/b',
  'tiny\u0000:x',
  'C:\\Windows\\system32',
  '~/.ssh/id_rsa',
  'x'.repeat(5000),
  '中文模型',
];
const BAD_PARAMS: Record<string, unknown>[] = [
  { temperature: 5 },
  { temperature: -0.1 },
  { top_p: 0 },
  { top_p: 1.5 },
  { max_tokens: 0 },
  { max_tokens: -5 },
  { max_tokens: 1e9 },
  { max_tokens: 2.5 },
  { max_completion_tokens: 1e9 },
  { n: 3 },
  { n: 0 },
  { stop: ['a', 'b', 'c', 'd', 'e'] },
  { seed: 1.5 },
  { presence_penalty: 9 },
  { frequency_penalty: -9 },
  { top_logprobs: 50, logprobs: true },
  { top_logprobs: 2 },
  { response_format: { type: 'xml' } },
  { response_format: { type: 'json_schema' } },
  { response_format: { type: 'json_schema', json_schema: { name: 'x'.repeat(100) } } },
  { stream_options: 'yes' },
  { messages: [] },
  { messages: [{ role: 'user' }, { content: 'no role' }] },
  { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
];

function pick<T>(r: Mulberry32, xs: readonly T[]): T {
  return xs[Math.floor(r.next() * xs.length)]!;
}

function validChat(model: string, r: Mulberry32): Record<string, unknown> {
  return {
    model,
    messages: [{ role: 'user', content: pick(r, ['hi', 'hello there', '你好', 'a\u0000b', '"quoted"\n']) }],
    max_tokens: 1 + Math.floor(r.next() * 3),
    temperature: pick(r, [0, 0.7, 1]),
  };
}

export function fuzzCase(r: Mulberry32, o: FuzzOptions): Case {
  const chat = validChat(o.model, r);
  const x = r.next();
  const post = (kind: string, body: unknown, expect: 'error' | 'any' | 'ok' = 'error'): Case => ({
    kind,
    path: r.next() < 0.8 ? '/v1/chat/completions' : '/v1/completions',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    expect,
  });
  if (x < 0.14) {
    // Malformed JSON: a valid body cut short, with junk spliced in, or raw bytes.
    const s = JSON.stringify(chat);
    const cut = s.slice(0, Math.floor(r.next() * (s.length - 1)));
    const junk = pick(r, ['', '\u0000', '\\', '"', '}}}', '\ud800', ',', 'NaN', '\xff\xfe']);
    return post('malformed_json', pick(r, [cut + junk, junk || '{', `${s}garbage`, "{'single':1}", '{"a":1,}']));
  }
  if (x < 0.3) {
    // Wrong types: one field replaced by a value of another type.
    const field = pick(r, [
      'model',
      'messages',
      'max_tokens',
      'temperature',
      'stop',
      'stream',
      'seed',
      'top_p',
      'logprobs',
      'prompt',
      'response_format',
      'user',
    ]);
    const b = { ...chat, [field]: pick(r, WRONG) };
    return { ...post('wrong_type', b, 'any'), path: '/v1/chat/completions' };
  }
  if (x < 0.44) return post('invalid_param', { ...chat, ...pick(r, BAD_PARAMS) });
  if (x < 0.56) {
    const name = pick(r, TRAVERSAL);
    return post('traversal_model', { ...chat, model: name, prompt: 'x' });
  }
  if (x < 0.6) {
    const size = o.maxBodyBytes + 1 + Math.floor(r.next() * o.maxBodyBytes * 3);
    return post('huge_body', { ...chat, messages: [{ role: 'user', content: 'z'.repeat(size) }] });
  }
  if (x < 0.66) {
    const path = pick(r, [
      '/v1/../../etc/passwd',
      '/v1/models/..%2f..%2fetc%2fpasswd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/v1/chat/completions/../../../x',
      '/v1/embeddings',
      '/studio/../../package.json',
      `/v1/${'a'.repeat(3000)}`,
    ]);
    return { kind: 'traversal_url', method: pick(r, ['GET', 'POST', 'DELETE']), path, body: '{}', expect: 'any' };
  }
  if (x < 0.72) {
    return {
      kind: 'content_type',
      path: '/v1/chat/completions',
      body: JSON.stringify(chat),
      contentType: pick(r, ['text/plain', 'multipart/form-data; boundary=x', 'application/xml', null]),
      expect: 'error',
    };
  }
  if (x < 0.8) {
    return {
      kind: 'disconnect_stream',
      path: '/v1/chat/completions',
      body: JSON.stringify({ ...chat, max_tokens: 16, stream: true }),
      expect: 'disconnect',
      after: 'first-byte',
    };
  }
  if (x < 0.84) {
    return {
      kind: 'disconnect_upload',
      path: '/v1/chat/completions',
      body: JSON.stringify(chat),
      expect: 'disconnect',
      after: 'upload',
    };
  }
  if (x < 0.92) return { ...post('valid', { ...chat, stream: r.next() < 0.5 }, 'ok'), path: '/v1/chat/completions' };
  const prompt = { model: o.model, prompt: pick(r, ['the', 'once upon', '1 2 3']), max_tokens: 2 };
  return { ...post('valid', { ...prompt, stream: r.next() < 0.5 }, 'ok'), path: '/v1/completions' };
}

interface Answer {
  status: number;
  type: string;
  body: string;
}

function send(o: FuzzOptions, c: Case): Promise<Answer | 'disconnected'> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
    const body = c.body ?? '';
    const rq = request(
      `${o.url}${c.path}`,
      { method: c.method ?? 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        if (c.expect === 'disconnect') {
          res.once('data', () => {
            rq.destroy();
            resolve('disconnected');
          });
          res.on('end', () => resolve('disconnected'));
          res.on('error', () => resolve('disconnected'));
          return;
        }
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(parts).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    rq.on('error', (e) => (c.expect === 'disconnect' ? resolve('disconnected') : reject(e)));
    if (c.expect === 'disconnect' && c.after === 'upload') {
      // Half the body, then the socket goes away.
      rq.write(body.slice(0, Math.floor(body.length / 2)));
      setTimeout(() => {
        rq.destroy();
        resolve('disconnected');
      }, 5);
      return;
    }
    rq.end(body);
  });
}

/** What is wrong with an answer, or undefined. */
function check(c: Case, a: Answer): string | undefined {
  if (!(a.status >= 200 && a.status < 600)) return `status ${a.status}`;
  if (a.status === 200) {
    if (c.expect === 'error') return 'answered 200 to an invalid request';
    if (a.type.includes('text/event-stream')) {
      if (!a.body.trimEnd().endsWith('data: [DONE]') && !a.body.includes('"error"')) return 'stream without [DONE]';
      return undefined;
    }
    if (c.path.startsWith('/v1/') && c.path.includes('completions')) {
      try {
        const j = JSON.parse(a.body) as { choices?: unknown[] };
        if (!Array.isArray(j.choices) || j.choices.length !== 1) return 'a 200 without one choice';
      } catch {
        return 'a 200 whose body is not JSON';
      }
    }
    return undefined;
  }
  if (c.expect === 'ok' && a.status !== 429 && a.status !== 503) return `valid request answered ${a.status}`;
  if (a.status < 400) return undefined;
  if (!a.type.includes('application/json')) return `error ${a.status} with content-type ${a.type}`;
  try {
    const e = (JSON.parse(a.body) as { error?: Record<string, unknown> }).error;
    if (!e || typeof e.message !== 'string' || !e.message) return `error ${a.status} without error.message`;
    if (typeof e.type !== 'string') return `error ${a.status} without error.type`;
    if (!('param' in e) || !('code' in e)) return `error ${a.status} without param/code`;
  } catch {
    return `error ${a.status} whose body is not JSON`;
  }
  return undefined;
}

export async function runServeFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const r = new Mulberry32(o.seed ?? 1);
  const report: FuzzReport = {
    requests: 0,
    byKind: {},
    byStatus: {},
    internalErrors: 0,
    violations: [],
    seconds: 0,
  };
  const t0 = performance.now();
  const cases = Array.from({ length: o.count }, () => fuzzCase(r, o));
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      report.byKind[c.kind] = (report.byKind[c.kind] ?? 0) + 1;
      let a: Answer | 'disconnected';
      try {
        a = await send(o, c);
      } catch (e) {
        report.violations.push(`${c.kind} ${c.path}: connection failed: ${(e as Error).message}`);
        continue;
      } finally {
        report.requests++;
      }
      const status = a === 'disconnected' ? 'disconnected' : String(a.status);
      report.byStatus[status] = (report.byStatus[status] ?? 0) + 1;
      if (a === 'disconnected') continue;
      if (a.status === 500 && a.body.includes('internal_error')) report.internalErrors++;
      const bad = check(c, a);
      if (bad && report.violations.length < 50)
        report.violations.push(
          `${c.kind} ${c.method ?? 'POST'} ${c.path.slice(0, 60)} ${String(c.body).slice(0, 80)}: ${bad}`,
        );
    }
  };
  await Promise.all(Array.from({ length: o.parallel ?? 4 }, worker));
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}
