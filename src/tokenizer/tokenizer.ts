/**
 * Tokenizer: HF `tokenizer.json` through the official `tokenizers` binding, plus what `tokenizer_config.json`
 * adds (bos/eos/pad tokens, chat template).
 *
 * API:
 *   LoomTokenizer.fromFolder(dir)                      tokenizer.json (+ tokenizer_config.json, generation_config.json)
 *   LoomTokenizer.fromFiles(tokenizerJson, configJson?) / LoomTokenizer.fromStrings(json, config?)
 *   tok.encode(text, { addSpecialTokens? = false })    -> Promise<number[]>
 *   tok.encodeBatch(texts, { addSpecialTokens? })     -> Promise<number[][]>
 *   tok.encodeWithOffsets(text)                         -> Promise<{ ids, offsets }> (offsets in code points)
 *   tok.decode(ids, { skipSpecialTokens? = false })    -> Promise<string>
 *   tok.tokenToId(token) / tok.idToToken(id)           sync
 *   tok.bos / tok.eos / tok.pad / tok.unk              { token, id } | null
 *   tok.eosIds                                          every id that ends generation (eos, generation_config, <|eot_id|>, <|im_end|>)
 *   tok.isSpecial(id) / tok.specialIds                  added tokens marked special
 *   tok.tokenBytes(id)                                  the exact bytes a token stands for (byte-level or sentencepiece
 *                                                       vocabularies), used by the streaming detokenizer
 *   tok.chatTemplate                                    from tokenizer_config.json (string, or the 'default' one of a list)
 *   tok.vocabSize                                       including added tokens
 * Chat rendering lives in chat.ts (renderChat, encodeChat).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfTokenizer } from 'tokenizers';
import { LoomError } from '../core/errors.ts';

export interface SpecialToken {
  token: string;
  id: number;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

type DecoderKind = 'byte-level' | 'sentencepiece' | 'other';

/** GPT-2's reversible byte <-> printable-unicode map used by byte-level BPE vocabularies. */
function byteLevelDecoderMap(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const m = new Map<string, number>();
  bs.forEach((b, i) => {
    m.set(String.fromCodePoint(cs[i] as number), b);
  });
  return m;
}

let byteDecoder: Map<string, number> | undefined;
export function byteLevelChars(): Map<string, number> {
  byteDecoder ??= byteLevelDecoderMap();
  return byteDecoder;
}

function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

function decoderKind(decoder: unknown): DecoderKind {
  const types: string[] = [];
  const walk = (d: unknown): void => {
    if (!d || typeof d !== 'object') return;
    const o = d as { type?: string; decoders?: unknown[] };
    if (o.type) types.push(o.type);
    for (const x of o.decoders ?? []) walk(x);
  };
  walk(decoder);
  if (types.includes('ByteLevel')) return 'byte-level';
  if (types.includes('Metaspace') || types.includes('ByteFallback')) return 'sentencepiece';
  return 'other';
}

export class LoomTokenizer {
  readonly hf: HfTokenizer;
  readonly config: Record<string, unknown>;
  readonly bos: SpecialToken | null;
  readonly eos: SpecialToken | null;
  readonly pad: SpecialToken | null;
  readonly unk: SpecialToken | null;
  readonly eosIds: number[];
  readonly chatTemplate: string | null;
  readonly specialIds: ReadonlySet<number>;
  readonly vocabSize: number;
  /** Whether encode(…, { addSpecialTokens: true }) should prepend bos (tokenizer_config add_bos_token). */
  readonly addBosToken: boolean;
  private readonly kind: DecoderKind;
  private readonly addedContent = new Map<number, string>();
  private readonly bytesCache = new Map<number, Uint8Array>();
  readonly source: string;

  private constructor(
    json: string,
    config: Record<string, unknown>,
    source: string,
    generationConfig: Record<string, unknown> = {},
  ) {
    this.source = source;
    let parsed: { added_tokens?: AddedTokenJson[]; decoder?: unknown; post_processor?: unknown };
    try {
      parsed = JSON.parse(json);
      this.hf = HfTokenizer.fromString(json);
    } catch (e) {
      throw new LoomError('TOKENIZER', `cannot load tokenizer: ${(e as Error).message}`, { file: source, cause: e });
    }
    this.config = config;
    this.kind = decoderKind(parsed.decoder);
    const special = new Set<number>();
    for (const t of parsed.added_tokens ?? []) {
      this.addedContent.set(t.id, t.content);
      if (t.special) special.add(t.id);
    }
    this.specialIds = special;
    this.vocabSize = this.hf.getVocabSize(true);
    const find = (key: string): SpecialToken | null => {
      const token = tokenContent(config[key]);
      if (!token) return null;
      const id = this.hf.tokenToId(token);
      return id === null || id === undefined ? null : { token, id };
    };
    this.bos = find('bos_token');
    this.eos = find('eos_token');
    this.pad = find('pad_token');
    this.unk = find('unk_token');
    this.addBosToken =
      config.add_bos_token === true && !JSON.stringify(parsed.post_processor ?? null).includes('TemplateProcessing');
    const eos = new Set<number>();
    if (this.eos) eos.add(this.eos.id);
    const g = generationConfig.eos_token_id;
    for (const id of Array.isArray(g) ? g : typeof g === 'number' ? [g] : []) eos.add(id as number);
    // End-of-turn markers of the common chat formats end a reply even when the config names another eos.
    for (const t of ['<|im_end|>', '<|eot_id|>', '<|end|>', '<end_of_turn>']) {
      const id = this.hf.tokenToId(t);
      if (id !== null && id !== undefined && special.has(id)) eos.add(id);
    }
    this.eosIds = [...eos];
    const ct = config.chat_template;
    if (typeof ct === 'string') this.chatTemplate = ct;
    else if (Array.isArray(ct)) {
      const d = ct.find((x: { name?: string }) => x?.name === 'default') as { template?: string } | undefined;
      this.chatTemplate = d?.template ?? null;
    } else this.chatTemplate = null;
  }

  static fromStrings(
    json: string,
    config: Record<string, unknown> = {},
    source = '(string)',
    generationConfig = {},
  ): LoomTokenizer {
    return new LoomTokenizer(json, config, source, generationConfig);
  }

  static fromFiles(tokenizerJson: string, tokenizerConfig?: string, generationConfig?: string): LoomTokenizer {
    if (!existsSync(tokenizerJson)) {
      const spm = join(dirname(tokenizerJson), 'tokenizer.model');
      throw new LoomError(
        'TOKENIZER',
        existsSync(spm)
          ? 'no tokenizer.json: the folder has only a sentencepiece tokenizer.model, which Loom does not read'
          : `no tokenizer.json at ${tokenizerJson}`,
        {
          file: tokenizerJson,
          hint: existsSync(spm)
            ? 'write tokenizer.json once with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir)'
            : 'a model folder needs tokenizer.json (the HF fast-tokenizer file); `loom pull` fetches it from the hub',
        },
      );
    }
    const readJson = (p?: string): Record<string, unknown> => {
      if (!p || !existsSync(p)) return {};
      try {
        return JSON.parse(readFileSync(p, 'utf8'));
      } catch (e) {
        throw new LoomError('TOKENIZER', `${p} is not valid JSON: ${(e as Error).message}`, { file: p });
      }
    };
    return new LoomTokenizer(
      readFileSync(tokenizerJson, 'utf8'),
      readJson(tokenizerConfig),
      tokenizerJson,
      readJson(generationConfig),
    );
  }

  static fromFolder(dir: string): LoomTokenizer {
    return LoomTokenizer.fromFiles(
      join(dir, 'tokenizer.json'),
      join(dir, 'tokenizer_config.json'),
      join(dir, 'generation_config.json'),
    );
  }

  async encode(text: string, opts: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    const add = opts.addSpecialTokens ?? false;
    const e = await this.hf.encode(text, null, { addSpecialTokens: add });
    const ids = e.getIds();
    if (add && this.addBosToken && this.bos && ids[0] !== this.bos.id) ids.unshift(this.bos.id);
    return ids;
  }

  /** Many texts at once (the binding encodes them in parallel on its own threads). */
  async encodeBatch(texts: readonly string[], opts: { addSpecialTokens?: boolean } = {}): Promise<number[][]> {
    const add = opts.addSpecialTokens ?? false;
    const encs = await this.hf.encodeBatch([...texts], { addSpecialTokens: add });
    return encs.map((e) => {
      const ids = e.getIds();
      if (add && this.addBosToken && this.bos && ids[0] !== this.bos.id) ids.unshift(this.bos.id);
      return ids;
    });
  }

  /** Ids and [start, end) offsets in Unicode code points of `text` (special tokens not added). */
  async encodeWithOffsets(text: string): Promise<{ ids: number[]; offsets: [number, number][] }> {
    const e = await this.hf.encode(text, null, { addSpecialTokens: false });
    return { ids: e.getIds(), offsets: e.getOffsets() as [number, number][] };
  }

  async decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    return this.hf.decode([...ids], opts.skipSpecialTokens ?? false);
  }

  tokenToId(token: string): number | null {
    return this.hf.tokenToId(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.hf.idToToken(id) ?? null;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Whether tokenBytes() is exact for this vocabulary (byte-level BPE or sentencepiece with byte fallback). */
  get hasByteTokens(): boolean {
    return this.kind !== 'other';
  }

  /** Sentencepiece decoders drop the space that `▁` adds at the very start of a text. */
  get stripsLeadingSpace(): boolean {
    return this.kind === 'sentencepiece';
  }

  /** The bytes one token stands for (added tokens: their UTF-8 content). */
  tokenBytes(id: number): Uint8Array {
    const hit = this.bytesCache.get(id);
    if (hit) return hit;
    let out: Uint8Array;
    const added = this.addedContent.get(id);
    const tok = added ?? this.idToToken(id);
    if (tok === null) out = new Uint8Array(0);
    else if (added !== undefined || this.kind === 'other') out = new TextEncoder().encode(tok);
    else if (this.kind === 'byte-level') {
      const map = byteLevelChars();
      const bytes: number[] = [];
      for (const ch of tok) {
        const b = map.get(ch);
        if (b === undefined) bytes.push(...new TextEncoder().encode(ch));
        else bytes.push(b);
      }
      out = Uint8Array.from(bytes);
    } else {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(tok);
      out = m
        ? Uint8Array.of(Number.parseInt(m[1] as string, 16))
        : new TextEncoder().encode(tok.replaceAll('\u2581', ' '));
    }
    this.bytesCache.set(id, out);
    return out;
  }
}
