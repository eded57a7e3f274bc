/**
 * PII detection and masking. `piiStep(cfg)` (cfg: the `pii` section of src/config/data-clean.ts) returns a Step;
 * `createPiiDetector(cfg)` gives `{ find(text), mask(text) }` for library use.
 *
 * Types and how each is recognised (digit look-arounds instead of `\b`, because JS treats Han as non-word):
 *  - `email`: local@domain.tld; `url` (off by default): http(s):// or www. links;
 *  - `ipv4`: four 0–255 octets not inside a longer dotted number and not after "v"/"version"/"版本";
 *    `public_ip_only` skips private, loopback, link-local, CGNAT and multicast ranges (FineWeb's choice);
 *  - `ipv6`: colon-hex candidates validated by node:net `isIPv6`, with at least three non-empty groups;
 *  - `cn_mobile`: 1[3-9]x + 8 digits, as 11 digits or 3-4-4 with spaces/hyphens, optional +86 / 0086 / (+86);
 *  - `cn_id`: 18-character mainland resident ID with a valid birth date and the GB 11643-1999 ISO 7064
 *    MOD 11-2 check character (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, remainder → 1 0 X 9 8 7 6 5 4 3 2);
 *  - `bank_card`: 13–19 digits (optionally in groups of 4 separated by a space or hyphen) starting with a card
 *    network prefix (4, 51–55, 22–27, 30/34–38, 60/62/64/65) and passing the Luhn check;
 *  - `phone_intl`: `+` country code then 8–15 digits in total (E.164), with spaces, dots, hyphens or brackets;
 *  - `cn_landline`, `qq`, `cn_address`, `person_name`: context-bound detectors in src/data/pii-cn.ts.
 * Numbers right after an order/tracking/invoice word (订单号, 运单, 单号, order, tracking, invoice, ref, #…) are not
 * taken as mobiles, landlines or cards: those are the usual false positives in customer-service data.
 *
 * Overlaps: detectors run in the order url → email → cn_id → cn_mobile → bank_card → phone_intl → cn_landline →
 * qq → ipv4 → ipv6 → cn_address → person_name
 * and a later match overlapping an earlier one is ignored. `mask` replaces each span with its token (`<EMAIL>`,
 * `<IP>`, `<URL>`, `<PHONE>`, `<ID>`, `<CARD>` by default). In the step, counts go to `pii.<type>`; a masked row is
 * logged to rejects as action `changed` with reason `pii: <types>` and the *masked* row (`rejects_pii: keep` logs
 * the original); `action: drop` (or more than `max_spans` spans) drops the row. `rejectMasker(cfg)` masks the
 * rejects of every other step the same way, so rejects.jsonl never becomes a store of raw PII.
 * String values in `meta` are scanned too (`scan_meta`, default on), since extra source columns often hold contacts.
 */
import { isIPv6 } from 'node:net';
import type { z } from 'zod';
import { DEFAULT_PII_TYPES, type PiiConfig, type PiiType, piiConfig } from '../config/data-clean.ts';
import { validateConfig } from '../config/load.ts';
import type { DataRow, Message, RejectRecord } from '../core/types.ts';
import { CONTEXT_DETECTORS } from './pii-cn.ts';
import { type Detector, factsOf, matchesOf, type TextFacts } from './pii-scan.ts';
import type { Step, StepContext } from './step.ts';

export type { PiiType } from '../config/data-clean.ts';

const DEFAULT_TOKENS: Record<PiiType, string> = {
  email: '<EMAIL>',
  ipv4: '<IP>',
  ipv6: '<IP>',
  url: '<URL>',
  cn_mobile: '<PHONE>',
  cn_id: '<ID>',
  bank_card: '<CARD>',
  phone_intl: '<PHONE>',
  cn_landline: '<PHONE>',
  qq: '<QQ>',
  cn_address: '<ADDRESS>',
  person_name: '<NAME>',
};

export interface PiiSpan {
  type: PiiType;
  start: number;
  end: number;
}

/** GB 11643-1999 check: ISO 7064 MOD 11-2 over the first 17 digits. */
export function cnIdValid(id: string): boolean {
  if (!/^\d{17}[\dXx]$/.test(id)) return false;
  const W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (id.charCodeAt(i) - 48) * W[i]!;
  const check = '10X98765432'[sum % 11]!;
  if (check !== id[17]!.toUpperCase()) return false;
  const y = Number(id.slice(6, 10));
  const m = Number(id.slice(10, 12));
  const d = Number(id.slice(12, 14));
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d && y >= 1900;
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return digits.length > 0 && sum % 10 === 0;
}

function ipv4Private(ip: string): boolean {
  const [a, b] = ip.split('.').map(Number) as [number, number];
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    a >= 224 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168)
  );
}

const ORDER_CONTEXT =
  /(?:(?:订单|单号|运单|快递单|物流|流水|工单|发票|退款单|(?<![A-Za-z])(?:order|tracking|invoice|ticket|ref))\s*(?:号|编号|号码|id|no\.?|number|#)?\s*[:：#]?|#)\s*$/i;
const VERSION_CONTEXT = /(?:(?<![A-Za-z])(?:version|ver\.?|v)|版本)\s*$/i;

const URL_CUE = /www\.|https?:/i;

const NOT_DIGIT_BEFORE = '(?<![0-9]|[0-9][- ])';
const NOT_DIGIT_AFTER = '(?![0-9]|[- ][0-9])';
const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';

function digitsOf(s: string): string {
  return s.replace(/[^0-9]/g, '');
}

export interface PiiDetectorOptions {
  types?: readonly PiiType[];
  tokens?: Partial<Record<PiiType, string>>;
  publicIpOnly?: boolean;
  /**
   * Pre-filters and the anchored address scan (src/data/pii-scan.ts); default on. Off runs every regex over the
   * whole text: the same findings, slower (tests and the guard bench compare the two).
   */
  prefilter?: boolean;
}

export interface PiiDetector {
  find(text: string): PiiSpan[];
  /** Masked text and the spans found (on the original text). */
  mask(text: string): { text: string; spans: PiiSpan[] };
}

export function createPiiDetector(opts: PiiDetectorOptions = {}): PiiDetector {
  const types = new Set<PiiType>(opts.types ?? DEFAULT_PII_TYPES);
  const tokens = { ...DEFAULT_TOKENS, ...opts.tokens };
  const before = (text: string, i: number): string => text.slice(Math.max(0, i - 24), i);
  const all: Detector[] = [
    {
      type: 'url',
      re: /\b(?:https?:\/\/|www\.)[^\s<>"'，。！？、）」』【】]+/gi,
      accept: () => true,
      may: (f) => URL_CUE.test(f.text),
    },
    {
      type: 'email',
      re: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])/g,
      accept: () => true,
      may: (f) => f.at,
    },
    {
      type: 'cn_id',
      re: /(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])/g,
      accept: (m) => cnIdValid(m),
      may: (f) => f.digitRun >= 17,
    },
    {
      type: 'cn_mobile',
      re: new RegExp(
        // Plain 11 digits need only digit look-arounds, so a space-separated list of mobiles is found; the
        // grouped forms keep the stricter ones so a group of a longer grouped number is not taken.
        `(?:(?<![0-9])(?:(?:\\+|00)86[- ]?|\\(\\+?86\\)[- ]?)?1[3-9][0-9]{9}(?![0-9])|${NOT_DIGIT_BEFORE}(?:(?:\\+|00)86[- ]?|\\(\\+?86\\)[- ]?)?1[3-9][0-9](?:[- ][0-9]{4}[- ][0-9]{4}|[0-9]{4}[- ][0-9]{4})${NOT_DIGIT_AFTER})`,
        'g',
      ),
      accept: (m, text, i) => m.startsWith('+') || m.startsWith('(') || !ORDER_CONTEXT.test(before(text, i)),
      // 11 digits in a row, or 3-4-4 / 3-8 groups: a run of at least 4.
      may: (f) => f.digitRun >= 4,
    },
    {
      type: 'bank_card',
      re: new RegExp(
        `${NOT_DIGIT_BEFORE}(?:[0-9]{13,19}|[0-9]{4}(?:[- ][0-9]{4}){2,3}(?:[- ][0-9]{1,3})?)${NOT_DIGIT_AFTER}`,
        'g',
      ),
      accept: (m, text, i) => {
        const d = digitsOf(m);
        return (
          d.length >= 13 &&
          d.length <= 19 &&
          /^(?:4|5[1-5]|2[2-7]|3[0478568]|6[0245])/.test(d) &&
          luhnValid(d) &&
          !ORDER_CONTEXT.test(before(text, i))
        );
      },
      may: (f) => f.digitRun >= 4,
    },
    {
      type: 'phone_intl',
      re: /(?<![\w+])\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){1,5}[ .-]?[0-9]{2,4}(?![0-9]|[ .-][0-9])/g,
      accept: (m) => {
        const n = digitsOf(m).length;
        return n >= 8 && n <= 15;
      },
      may: (f) => f.plus,
    },
    ...CONTEXT_DETECTORS.filter((d) => d.type === 'cn_landline' || d.type === 'qq'),
    {
      type: 'ipv4',
      re: new RegExp(`(?<![\\w.])${OCTET}(?:\\.${OCTET}){3}(?![0-9]|\\.[0-9])`, 'g'),
      accept: (m, text, i) => !VERSION_CONTEXT.test(before(text, i)) && !(opts.publicIpOnly && ipv4Private(m)),
      may: (f) => f.dots >= 3,
    },
    {
      type: 'ipv6',
      re: /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:[0-9]{1,3}\.){3}[0-9]{1,3})?(?![\w:])/g,
      accept: (m) => isIPv6(m) && m.split(':').filter((g) => g !== '').length >= 3,
      may: (f) => f.colons >= 2,
    },
    ...CONTEXT_DETECTORS.filter((d) => d.type === 'cn_address' || d.type === 'person_name'),
  ];
  const active = all.filter((d) => types.has(d.type));
  const prefilter = opts.prefilter !== false;
  const find = (text: string): PiiSpan[] => {
    const spans: PiiSpan[] = [];
    const facts: TextFacts | undefined = prefilter ? factsOf(text) : undefined;
    for (const d of active) {
      if (facts && d.may && !d.may(facts)) continue;
      for (const m of matchesOf(d, text, prefilter)) {
        let s = m[0];
        if (d.type === 'url') s = s.replace(/[.,;:!?)\]]+$/, '');
        const start = m.index;
        const end = start + s.length;
        if (!d.accept(s, text, start)) continue;
        if (spans.some((x) => start < x.end && end > x.start)) continue;
        spans.push({ type: d.type, start, end });
      }
    }
    return spans.sort((a, b) => a.start - b.start);
  };
  return {
    find,
    mask(text: string) {
      const spans = find(text);
      if (spans.length === 0) return { text, spans };
      let out = '';
      let at = 0;
      for (const s of spans) {
        out += text.slice(at, s.start) + tokens[s.type];
        at = s.end;
      }
      return { text: out + text.slice(at), spans };
    },
  };
}

export function piiStep(input: z.input<typeof piiConfig> = {}): Step {
  const cfg: PiiConfig = validateConfig(piiConfig, input, '<pii config>');
  const det = createPiiDetector({ types: cfg.types, tokens: cfg.tokens, publicIpOnly: cfg.public_ip_only });
  return {
    name: 'pii',
    async *run(rows: AsyncIterable<DataRow>, ctx: StepContext): AsyncIterable<DataRow> {
      if (!cfg.enabled) {
        yield* rows;
        return;
      }
      for await (const row of rows) {
        const found: Partial<Record<PiiType, number>> = {};
        let total = 0;
        const maskStr = (s: string): string => {
          const r = det.mask(s);
          for (const sp of r.spans) found[sp.type] = (found[sp.type] ?? 0) + 1;
          total += r.spans.length;
          return r.text;
        };
        const maskMsgs = (ms: Message[]): Message[] =>
          ms.map((m) => (typeof m.content === 'string' ? { ...m, content: maskStr(m.content) } : m));
        const masked: DataRow = { ...row };
        if (typeof row.text === 'string') masked.text = maskStr(row.text);
        if (cfg.scan_meta) {
          const maskAny = (v: unknown): unknown => {
            if (typeof v === 'string') return maskStr(v);
            if (Array.isArray(v)) return v.map(maskAny);
            if (v && typeof v === 'object') {
              const o: Record<string, unknown> = {};
              for (const [k, x] of Object.entries(v)) o[k] = maskAny(x);
              return o;
            }
            return v;
          };
          const before = total;
          const meta = maskAny(row.meta) as Record<string, unknown>;
          if (total > before) masked.meta = meta;
        }
        if (Array.isArray(row.messages)) masked.messages = maskMsgs(row.messages);
        if (Array.isArray(row.prompt)) masked.prompt = maskMsgs(row.prompt);
        for (const f of ['chosen', 'rejected'] as const) {
          const v = row[f];
          if (typeof v === 'string') masked[f] = maskStr(v);
          else if (Array.isArray(v)) masked[f] = maskMsgs(v);
        }
        if (total === 0) {
          yield row;
          continue;
        }
        for (const [t, n] of Object.entries(found)) ctx.count(`pii.${t}`, n);
        ctx.count('pii.rows');
        const types = Object.keys(found).sort();
        const logged = cfg.rejects_keep_original || cfg.rejects_pii === 'keep' ? row : masked;
        const tooMany = cfg.max_spans !== null && total > cfg.max_spans;
        if (cfg.action === 'drop' || tooMany) {
          ctx.count('pii.rows_dropped');
          ctx.reject({
            step: 'pii',
            reason: tooMany ? 'pii.too_many_spans' : `pii.found: ${types.join(',')}`,
            action: 'dropped',
            source: row.source,
            row: logged,
            detail: { types: found, spans: total },
          });
          continue;
        }
        ctx.reject({
          step: 'pii',
          reason: `pii: ${types.join(',')}`,
          action: 'changed',
          source: row.source,
          row: logged,
          detail: { types: found, spans: total },
        });
        yield masked;
      }
    },
  };
}

/**
 * Masks PII in a reject record (its row, raw text and detail, at any depth; `source`, `step`, `reason` and ids
 * are left alone) with the pii section's types and tokens. Undefined when PII handling is off or `rejects_pii:
 * keep`. Rows dropped before the pii step (malformed lines, filters) and normalisation's logged originals would
 * otherwise carry raw phone numbers and IDs into rejects.jsonl, a file people open, attach and share.
 */
export function rejectMasker(
  input: z.input<typeof piiConfig> | false | undefined,
): ((r: RejectRecord) => RejectRecord) | undefined {
  if (input === false || input === undefined) return undefined;
  const cfg: PiiConfig = validateConfig(piiConfig, input, '<pii config>');
  if (!cfg.enabled || cfg.rejects_pii === 'keep' || cfg.rejects_keep_original) return undefined;
  const det = createPiiDetector({ types: cfg.types, tokens: cfg.tokens, publicIpOnly: cfg.public_ip_only });
  const mask = (v: unknown, key?: string): unknown => {
    if (typeof v === 'string') return key === 'id' ? v : det.mask(v).text;
    if (Array.isArray(v)) return v.map((x) => mask(x));
    if (v && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) o[k] = k === 'source' ? x : mask(x, k);
      return o;
    }
    return v;
  };
  return (r) => {
    // The pii step logs its own rows already masked (or deliberately raw).
    if (r.step === 'pii') return r;
    const out: RejectRecord = { ...r, row: mask(r.row) };
    if (r.detail) out.detail = mask(r.detail) as Record<string, unknown>;
    return out;
  };
}
