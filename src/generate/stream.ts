/**
 * Streaming detokenization that never splits a multi-byte character.
 *
 * API:
 *   new StreamDecoder(tok, { skipSpecialTokens? = true })   for byte-level / sentencepiece vocabularies
 *     .push(id) -> string     text completed by this token ('' while a UTF-8 sequence is still partial)
 *     .flush()  -> string     the rest (an unfinished sequence becomes U+FFFD, as decode() does)
 *     .text                   everything emitted so far
 *   new TextStream(tok, { stop?, eosIds?, skipSpecialTokens? })   StreamDecoder + StopStrings + EOS:
 *     .push(id) -> { text, stopped, reason? }   reason: 'eos' | 'stop'
 *     .finish() -> string     held-back text once generation ends for another reason (max tokens)
 *
 * Each token contributes its exact bytes (LoomTokenizer.tokenBytes); a streaming UTF-8 decoder keeps an
 * incomplete character's bytes until the token that completes it arrives. This needs a byte-level BPE or a
 * sentencepiece (byte fallback) vocabulary, which every Llama-family model has (tok.hasByteTokens).
 */
import type { LoomTokenizer } from '../tokenizer/tokenizer.ts';
import { StopStrings } from './stop.ts';

export interface StreamTokenizer {
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
  readonly stripsLeadingSpace?: boolean;
}

export class StreamDecoder {
  private readonly tok: StreamTokenizer;
  private readonly skipSpecial: boolean;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private first = true;
  text = '';

  constructor(tok: StreamTokenizer, opts: { skipSpecialTokens?: boolean } = {}) {
    this.tok = tok;
    this.skipSpecial = opts.skipSpecialTokens ?? true;
  }

  push(id: number): string {
    if (this.skipSpecial && this.tok.isSpecial(id)) return '';
    let out = this.decoder.decode(this.tok.tokenBytes(id), { stream: true });
    if (this.first && out.length > 0) {
      // Sentencepiece marks a word start with a space that decode() drops at the very beginning.
      if (this.tok.stripsLeadingSpace && out.startsWith(' ')) out = out.slice(1);
      this.first = false;
    }
    this.text += out;
    return out;
  }

  flush(): string {
    const out = this.decoder.decode();
    this.text += out;
    return out;
  }
}

export interface StreamEvent {
  text: string;
  stopped: boolean;
  reason?: 'eos' | 'stop';
}

export class TextStream {
  private readonly dec: StreamDecoder;
  private readonly stops: StopStrings;
  private readonly eos: Set<number>;
  private finished = false;

  constructor(
    tok: StreamTokenizer & Partial<Pick<LoomTokenizer, 'eosIds'>>,
    opts: { stop?: readonly string[]; eosIds?: readonly number[]; skipSpecialTokens?: boolean } = {},
  ) {
    this.dec = new StreamDecoder(tok, { skipSpecialTokens: opts.skipSpecialTokens });
    this.stops = new StopStrings(opts.stop ?? []);
    this.eos = new Set(opts.eosIds ?? tok.eosIds ?? []);
  }

  push(id: number): StreamEvent {
    if (this.finished) return { text: '', stopped: true };
    if (this.eos.has(id)) {
      this.finished = true;
      const tail = this.stops.push(this.dec.flush());
      return {
        text: tail.text + (tail.stopped ? '' : this.stops.flush()),
        stopped: true,
        reason: tail.stopped ? 'stop' : 'eos',
      };
    }
    const r = this.stops.push(this.dec.push(id));
    if (r.stopped) {
      this.finished = true;
      return { text: r.text, stopped: true, reason: 'stop' };
    }
    return { text: r.text, stopped: false };
  }

  finish(): string {
    if (this.finished) return '';
    this.finished = true;
    const r = this.stops.push(this.dec.flush());
    return r.text + (r.stopped ? '' : this.stops.flush());
  }
}
