/**
 * Reading an OpenAI-style streamed chat completion (`stream: true`): server-sent events, one JSON chunk per
 * `data:` line, ending with `data: [DONE]`. Text deltas are handed on as they arrive (pass-through streaming).
 * A provider that answers a streamed request with plain JSON anyway is read as a whole reply.
 */
import { LoomError } from '../core/errors.ts';
import type { ChatResult } from '../core/types.ts';

interface StreamChunk {
  choices?: {
    delta?: { content?: string | null };
    message?: { content?: string | null };
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

/** Reads `res` (status already checked), calling onText with each text delta; the whole reply at the end. */
export async function readChatStream(id: string, res: Response, onText: (delta: string) => void): Promise<ChatResult> {
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('text/event-stream')) {
    const text = await res.text();
    let json: StreamChunk;
    try {
      json = JSON.parse(text) as StreamChunk;
    } catch {
      throw new LoomError('PROVIDER', `${id}: response is not JSON: ${text.slice(0, 200)}`);
    }
    const choice = json.choices?.[0];
    if (!choice) throw new LoomError('PROVIDER', `${id}: response has no choices: ${text.slice(0, 200)}`);
    const reply = choice.message?.content ?? '';
    if (reply) onText(reply);
    return result(reply, json, choice.finish_reason);
  }
  let text = '';
  let finish: string | null | undefined;
  let usage: StreamChunk['usage'];
  let pieces = 0;
  const decoder = new TextDecoder();
  let buf = '';
  const event = (data: string): boolean => {
    if (data === '[DONE]') return true;
    let c: StreamChunk;
    try {
      c = JSON.parse(data) as StreamChunk;
    } catch {
      throw new LoomError('PROVIDER', `${id}: stream event is not JSON: ${data.slice(0, 200)}`);
    }
    if (c.error) throw new LoomError('PROVIDER', `${id}: upstream stream error: ${c.error.message ?? 'unknown'}`);
    const ch = c.choices?.[0];
    const d = ch?.delta?.content;
    if (d) {
      text += d;
      pieces++;
      onText(d);
    }
    if (ch?.finish_reason) finish = ch.finish_reason;
    if (c.usage) usage = c.usage;
    return false;
  };
  if (!res.body) throw new LoomError('PROVIDER', `${id}: streamed response has no body`);
  for await (const bytes of res.body) {
    buf += decoder.decode(bytes, { stream: true }).replaceAll('\r\n', '\n');
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (data && event(data)) return result(text, { usage }, finish, pieces);
    }
  }
  // No [DONE]: a stream cut short by the upstream is a failure, not a shorter reply.
  throw new LoomError('NETWORK', `${id}: the upstream closed the stream before [DONE]`);
}

function result(text: string, json: StreamChunk, finish: string | null | undefined, pieces?: number): ChatResult {
  return {
    text,
    usage: {
      promptTokens: json.usage?.prompt_tokens ?? 0,
      // Without a usage chunk, streamed pieces are the best count there is (providers send one token per chunk).
      completionTokens: json.usage?.completion_tokens ?? pieces ?? 0,
    },
    finishReason: finish === 'length' ? 'length' : 'stop',
  };
}
