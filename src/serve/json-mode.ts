/**
 * `response_format: {type: "json_object"}` on local models: constrained decoding with a byte-level JSON acceptor
 * (RFC 8259 grammar, top level an object), so every token the sampler may pick keeps the output a prefix of valid
 * JSON, and once the object is closed only an end-of-sequence token may follow. The output is therefore valid JSON
 * whenever generation ends by itself (finish_reason "stop"); `max_tokens` can still cut it short
 * (finish_reason "length"), as with OpenAI.
 *
 * Bytes, not characters: a byte-level BPE token may hold part of a UTF-8 character, and bytes >= 0x80 can only
 * appear inside strings anyway. Whitespace between tokens is capped (MAX_WS bytes in a row) so a model cannot spend
 * its whole budget on blanks; nesting is capped at MAX_DEPTH.
 *
 * API:
 *   const a = new JsonAcceptor()        a.feed(bytes) -> boolean (false: not a JSON prefix; the state is then spoilt)
 *   a.clone(), a.done (a complete object has been read), a.closing() (shortest text completing the object)
 *   jsonObjectHook(tok, eosIds, maxTokens?) -> TokenHook for the sampler (generate/sampling.ts)
 */
import type { TokenHook } from '../generate/sampling.ts';

const MAX_WS = 16;
const MAX_DEPTH = 32;

enum M {
  Start, // before the top-level object
  Value, // a value must come (after ':' or ',' in an array)
  KeyOrEnd, // after '{'
  Key, // after ',' in an object
  Colon,
  After, // after a value: ',' or a closing bracket
  ValueOrEnd, // after '['
  Str,
  Esc,
  Hex,
  Lit, // inside true/false/null
  Num,
  Done,
}

// Number sub-states.
enum N {
  Minus, // '-' read, a digit must follow
  Zero, // a leading 0: no more integer digits
  Int,
  Dot, // '.' read, a digit must follow
  Frac,
  E, // 'e' read: sign or digit
  ESign, // sign read: digit
  Exp,
}

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46);
/** The rest of true / false / null after their first letter. */
const LITERALS = new Map([
  [0x74, 'rue'],
  [0x66, 'alse'],
  [0x6e, 'ull'],
]);

export class JsonAcceptor {
  private mode: M = M.Start;
  /** Open containers, '{' or '['. */
  private stack = '';
  private key = false;
  private sub = 0;
  private lit = '';
  private ws = 0;

  get done(): boolean {
    return this.mode === M.Done;
  }

  clone(): JsonAcceptor {
    const c = new JsonAcceptor();
    c.mode = this.mode;
    c.stack = this.stack;
    c.key = this.key;
    c.sub = this.sub;
    c.lit = this.lit;
    c.ws = this.ws;
    return c;
  }

  /** The shortest text that turns what was read into a complete object (keys get a null value). */
  closing(): string {
    const closers = [...this.stack]
      .reverse()
      .map((c) => (c === '{' ? '}' : ']'))
      .join('');
    const afterStr = (this.key ? ':null' : '') + closers;
    switch (this.mode) {
      case M.Start:
        return '{}';
      case M.Value:
        return `null${closers}`;
      case M.Key:
        return `"":null${closers}`;
      case M.Colon:
        return `:null${closers}`;
      case M.Str:
        return `"${afterStr}`;
      case M.Esc:
        return `n"${afterStr}`;
      case M.Hex:
        return `${'0'.repeat(this.sub)}"${afterStr}`;
      case M.Lit:
        return this.lit + closers;
      case M.Num:
        return (
          (this.sub === N.Minus || this.sub === N.Dot || this.sub === N.E || this.sub === N.ESign ? '0' : '') + closers
        );
      case M.Done:
        return '';
      default: // KeyOrEnd, ValueOrEnd, After: the brackets alone
        return closers;
    }
  }

  feed(bytes: Uint8Array): boolean {
    for (const b of bytes) if (!this.byte(b)) return false;
    return true;
  }

  private open(b: number): boolean {
    if (this.stack.length >= MAX_DEPTH) return false;
    this.stack += b === 0x7b ? '{' : '[';
    this.mode = b === 0x7b ? M.KeyOrEnd : M.ValueOrEnd;
    return true;
  }

  private close(b: number): boolean {
    const top = this.stack[this.stack.length - 1];
    if ((b === 0x7d && top !== '{') || (b === 0x5d && top !== '[')) return false;
    this.stack = this.stack.slice(0, -1);
    this.mode = this.stack.length === 0 ? M.Done : M.After;
    return true;
  }

  /** A value starting with byte b (after whitespace). */
  private value(b: number): boolean {
    if (b === 0x7b || b === 0x5b) return this.open(b);
    if (b === 0x22) {
      this.mode = M.Str;
      this.key = false;
      return true;
    }
    if (b === 0x2d || isDigit(b)) {
      this.mode = M.Num;
      this.sub = b === 0x2d ? N.Minus : b === 0x30 ? N.Zero : N.Int;
      return true;
    }
    const rest = LITERALS.get(b);
    if (rest) {
      this.mode = M.Lit;
      this.lit = rest;
      return true;
    }
    return false;
  }

  private byte(b: number): boolean {
    const m = this.mode;
    // Whitespace between tokens: allowed wherever no token is in progress, a few bytes in a row.
    if (m !== M.Str && m !== M.Esc && m !== M.Hex && m !== M.Lit && m !== M.Num && isWs(b)) {
      // Not before the object either: the reply starts with '{'.
      if (m === M.Done || m === M.Start || ++this.ws > MAX_WS) return false;
      return true;
    }
    if (m !== M.Num) this.ws = 0;
    switch (m) {
      case M.Start:
        return b === 0x7b && this.open(b);
      case M.Value:
        return this.value(b);
      case M.ValueOrEnd:
        return b === 0x5d ? this.close(b) : this.value(b);
      case M.KeyOrEnd:
        if (b === 0x7d) return this.close(b);
        if (b !== 0x22) return false;
        this.mode = M.Str;
        this.key = true;
        return true;
      case M.Key:
        if (b !== 0x22) return false;
        this.mode = M.Str;
        this.key = true;
        return true;
      case M.Colon:
        if (b !== 0x3a) return false;
        this.mode = M.Value;
        return true;
      case M.After:
        if (b === 0x2c) {
          this.mode = this.stack.endsWith('{') ? M.Key : M.Value;
          return true;
        }
        return (b === 0x7d || b === 0x5d) && this.close(b);
      case M.Str:
        if (b === 0x22) {
          this.mode = this.key ? M.Colon : M.After;
          return true;
        }
        if (b === 0x5c) {
          this.mode = M.Esc;
          return true;
        }
        return b >= 0x20;
      case M.Esc:
        if (b === 0x75) {
          this.mode = M.Hex;
          this.sub = 4;
          return true;
        }
        if (!'"\\/bfnrt'.includes(String.fromCharCode(b))) return false;
        this.mode = M.Str;
        return true;
      case M.Hex:
        if (!isHex(b)) return false;
        if (--this.sub === 0) this.mode = M.Str;
        return true;
      case M.Lit:
        if (b !== this.lit.charCodeAt(0)) return false;
        this.lit = this.lit.slice(1);
        if (this.lit === '') this.mode = M.After;
        return true;
      case M.Num:
        return this.number(b);
      default:
        return false;
    }
  }

  private number(b: number): boolean {
    const d = isDigit(b);
    switch (this.sub as N) {
      case N.Minus:
        if (!d) return false;
        this.sub = b === 0x30 ? N.Zero : N.Int;
        return true;
      case N.Int:
      case N.Zero:
        if (d && this.sub === N.Int) return true;
        if (b === 0x2e) this.sub = N.Dot;
        else if (b === 0x65 || b === 0x45) this.sub = N.E;
        else return this.endNumber(b);
        return true;
      case N.Dot:
        if (!d) return false;
        this.sub = N.Frac;
        return true;
      case N.Frac:
        if (d) return true;
        if (b === 0x65 || b === 0x45) {
          this.sub = N.E;
          return true;
        }
        return this.endNumber(b);
      case N.E:
        if (b === 0x2b || b === 0x2d) {
          this.sub = N.ESign;
          return true;
        }
        if (!d) return false;
        this.sub = N.Exp;
        return true;
      case N.ESign:
        if (!d) return false;
        this.sub = N.Exp;
        return true;
      case N.Exp:
        if (d) return true;
        return this.endNumber(b);
    }
    return false;
  }

  /** A number ends at the first byte that cannot continue it; that byte is read as what follows a value. */
  private endNumber(b: number): boolean {
    this.mode = M.After;
    this.ws = 0;
    return this.byte(b);
  }
}

export interface ByteTokenizer {
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
}

/**
 * The sampler hook for JSON mode: tokens that keep the output a JSON-object prefix; EOS only once it is closed.
 * With `maxTokens`, the object is closed before the budget runs out (see the module comment).
 */
export function jsonObjectHook(tok: ByteTokenizer, eosIds: Iterable<number>, maxTokens?: number): TokenHook {
  const eos = new Set(eosIds);
  const utf8 = new TextEncoder();
  let state = new JsonAcceptor();
  let used = 0;
  const utf8Closing = () => utf8.encode(state.closing());
  return {
    allow(id) {
      if (eos.has(id)) return state.done;
      if (state.done || tok.isSpecial(id)) return false;
      const bytes = tok.tokenBytes(id);
      if (bytes.length === 0) return false;
      const next = state.clone();
      if (!next.feed(bytes)) return false;
      if (maxTokens === undefined) return true;
      // After this token, the tokens left must still fit the shortest completion plus EOS (one byte per token at
      // worst); a token spelling the start of the current completion is always fine.
      if (utf8.encode(next.closing()).length + 1 <= maxTokens - used - 1) return true;
      const c = utf8Closing();
      return bytes.length <= c.length && bytes.every((b, i) => b === c[i]);
    },
    chosen(id) {
      used++;
      if (!eos.has(id) && !state.done) {
        const next = state.clone();
        if (next.feed(tok.tokenBytes(id))) state = next;
      }
    },
  };
}
