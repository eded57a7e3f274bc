import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MockRequest {
  body: {
    model: string;
    messages: { role: string; content: string }[];
    max_tokens?: number;
    temperature?: number;
    seed?: number;
  };
  headers: IncomingMessage['headers'];
}

/** What the mock does for one request: a reply text, or an HTTP failure, or a stall (for timeouts). */
export type MockAction =
  | { reply: string }
  | { status: number; body?: string; retryAfter?: number }
  | { stallMs: number };

export interface OpenAIMock {
  url: string;
  requests: MockRequest[];
  maxInFlight: number;
  close(): Promise<void>;
}

/** A local OpenAI-compatible /v1/chat/completions stand-in whose behaviour the test scripts per request. */
export async function startOpenAIMock(
  handler: (req: MockRequest, index: number) => MockAction | Promise<MockAction>,
): Promise<OpenAIMock> {
  const requests: MockRequest[] = [];
  let inFlight = 0;
  const state = { maxInFlight: 0 };
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    // The eval suite's health probe (GET /v1/models) is answered without reaching the scripted handler.
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[]}');
      return;
    }
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    try {
      let raw = '';
      for await (const c of req) raw += c;
      const mr: MockRequest = { body: JSON.parse(raw), headers: req.headers };
      const i = requests.push(mr) - 1;
      const action = await handler(mr, i);
      if ('stallMs' in action) {
        await new Promise((r) => setTimeout(r, action.stallMs));
        res.destroy();
        return;
      }
      if ('status' in action) {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (action.retryAfter !== undefined) headers['retry-after'] = String(action.retryAfter);
        res.writeHead(action.status, headers).end(action.body ?? '{"error":{"message":"mock failure"}}');
        return;
      }
      const prompt = mr.body.messages.map((m) => m.content).join(' ');
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id: `mock-${i}`,
          object: 'chat.completion',
          model: mr.body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: action.reply }, finish_reason: 'stop' }],
          usage: { prompt_tokens: prompt.length, completion_tokens: action.reply.length },
        }),
      );
    } finally {
      inFlight--;
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    get maxInFlight() {
      return state.maxInFlight;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A base URL on 127.0.0.1 where nothing listens (a port just freed), for "endpoint unreachable" tests. */
export async function unreachableUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}/v1`;
}
