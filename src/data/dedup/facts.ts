/**
 * The facts guard of near-dedup, shared by the single run (src/data/dedup/near.ts) and the cross-shard merge
 * (src/data/shard.ts) so both decide alike: a row is never dropped as a near-duplicate of a keeper whose numbers
 * (src/data/dedup/numbers.ts) or named entities differ. MinHash sees "推荐您去北京人卫酒店" and "推荐您去北京国宾酒店"
 * as nearly the same text; they are different answers.
 *
 * Entities are found simply, without a segmenter or a model:
 *   - Latin words in Chinese text (more Han characters than Latin letters): product names, brands, model codes
 *     ("iPhone", "Pro", "XR"), lowercased;
 *   - a Han name ending with a place/organisation/shop suffix (…酒店, …博物馆, …地铁站, …路, …店, …园 …), the name
 *     being the up-to-8 Han characters before the suffix that are not function characters (的, 是, 去, 您 …);
 *   - names in 《》「」“”;
 *   - a person with a title: surname + 0–2 characters + 先生/女士/小姐/经理/老师/师傅/医生.
 * Two entity sequences conflict when, aligned in order, two or more names are left over (entitiesConflict): a
 * changed or swapped name conflicts, one deleted mention does not. Names compare fuzzily (sameName), so a
 * typo-level edit inside a name still lets an edited copy merge.
 */

import { numberSequence, numbersConflict } from './numbers.ts';

const SEP = '\u001f';
const MAX_ENTITIES = 128;

const SUFFIX =
  '大酒店|酒店|饭店|宾馆|旅馆|公寓|客栈|大厦|中心|广场|商场|市场|超市|博物馆|美术馆|纪念馆|展览馆|体育馆|图书馆|科技馆|' +
  '餐厅|餐馆|饭馆|食府|食堂|酒家|酒楼|小吃|火锅|烤鸭|面馆|包子铺|铺|茶馆|咖啡|' +
  '公园|乐园|动物园|植物园|园|寺|庙|宫|殿|塔|楼|阁|府|城|湖|山|谷|庄|村|胡同|街|路|桥|门|站|地铁站|机场|港|' +
  '大学|学院|学校|中学|小学|医院|银行|公司|集团|工厂|厂|研究所|' +
  '省|市|区|县|镇|乡|店|馆|院|厅|堂|吧|屋|坊|苑|坛|观|居|巷|世界|草原|剧院|故居|大街|美食|私家菜|烤肉|涮肉|炸酱面';
/**
 * What ends a name going backwards: function characters and words of service talk that never sit inside a place
 * name (和, 家, 都, 一 do: 颐和园, 中国国家博物馆, 北京首都宾馆, 一碗居, so they are not here).
 */
const STOP_WORDS = [
  '推荐',
  '附近',
  '周边',
  '可以',
  '选择',
  '还有',
  '一下',
  '请问',
  '入住',
  '住宿',
  '游玩',
  '前往',
  '或者',
  '以及',
  '还是',
  '就是',
  '这家',
  '那家',
  '一家',
  '那个',
  '这个',
];
const STOP_CHARS = '的是去在您你我他她它们这吗呢吧啊哦了到有吃住玩想要给叫';
const STOP_RE = new RegExp(`(?:${STOP_WORDS.join('|')}|[${STOP_CHARS}])`, 'gu');
const HAN = '\\u3400-\\u9fff';
const HAN_CHAR = new RegExp(`[${HAN}]`, 'u');
const NAME_RE = new RegExp(`([${HAN}]{1,8}?)(${SUFFIX})`, 'gu');
const LATIN_RE = /[A-Za-z][A-Za-z'&+-]*[A-Za-z]|[A-Za-z]/g;
const QUOTED_RE = /[《「“]([^》」”]{1,24})[》」”]/g;
const PERSON_RE = new RegExp(
  `[王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤][${HAN}]{0,2}?(?:先生|女士|小姐|经理|老师|师傅|医生)`,
  'gu',
);

/** The text's entities in order of appearance (see the module comment), joined by U+001F; '' when none. */
export function entitySequence(text: string): string {
  const found: { at: number; v: string }[] = [];
  const push = (at: number, v: string) => {
    if (v !== '' && found.length < MAX_ENTITIES * 2) found.push({ at, v });
  };
  // Latin words are names only inside Chinese text; in English text they are the text itself (an edited copy
  // changes some of them), so there only the Han rules below can fire.
  const latin = [...text.matchAll(LATIN_RE)];
  const letters = latin.reduce((n, m) => n + m[0].length, 0);
  if (letters < countHan(text)) for (const m of latin) push(m.index!, m[0].toLowerCase());
  for (const m of text.matchAll(QUOTED_RE)) push(m.index!, m[1]!.trim());
  for (const m of text.matchAll(PERSON_RE)) push(m.index!, m[0]);
  for (const m of text.matchAll(NAME_RE)) {
    // The lazy group starts right after the previous match; trim it back to the name: the characters after the
    // last function character.
    let name = m[1]!;
    let cut = 0;
    for (const w of name.matchAll(STOP_RE)) cut = w.index! + w[0].length;
    name = name.slice(cut);
    // A bare suffix ("酒店", "这家店") is a common noun, not a name.
    if (name.length === 0) continue;
    push(m.index! + m[1]!.length - name.length, name + m[2]!);
  }
  found.sort((a, b) => a.at - b.at);
  return found
    .slice(0, MAX_ENTITIES)
    .map((f) => f.v.replaceAll(SEP, ' '))
    .join(SEP);
}

function countHan(text: string): number {
  let n = 0;
  for (const c of text) if (HAN_CHAR.test(c)) n++;
  return n;
}

/**
 * The same name, allowing a typo-level edit: edit distance <= 1 (names of 2+ characters; "鼓楼店" = "鼓茕楼店"), or one
 * name ending with the other ("人蘨故宫" = "故宫"). Two names of one chain differ in 2+ ("…皇冠假日酒店" / "…智选假日酒店"). A different name differs in more: "北京人卫酒店" / "北京国宾酒店" is 2 apart at 6.
 */
function sameName(a: string, b: string): boolean {
  if (a === b) return true;
  const min = Math.min(a.length, b.length);
  if (min < 2) return false;
  // Names end at their suffix; where they start is a guess, and an edit just before one moves the start.
  if (a.endsWith(b) || b.endsWith(a)) return true;
  return editDistance(a, b, 1) <= 1;
}

/** Levenshtein distance, stopping early once it exceeds `cap` (returns cap + 1 then). */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < best) best = v;
    }
    if (best > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/** Length of the longest common subsequence of two name lists, names compared with sameName. */
function commonNames(x: string[], y: string[]): number {
  let prev = new Uint16Array(y.length + 1);
  for (let i = 1; i <= x.length; i++) {
    const cur = new Uint16Array(y.length + 1);
    for (let j = 1; j <= y.length; j++) {
      cur[j] = sameName(x[i - 1]!, y[j - 1]!) ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    prev = cur;
  }
  return prev[y.length]!;
}

/**
 * True when the two entity sequences (from entitySequence) name different things: after aligning them in order
 * (names compared with sameName), two or more names are left over in all — a name on each side (changed or
 * swapped), or two missing on one. A single name left over is what one typo-level edit does to a guessed name
 * boundary ("鼓楼" + bare "店" vs "楼店"), or a deleted mention, and still merges.
 */
export function entitiesConflict(a: string, b: string): boolean {
  if (a === b) return false;
  const x = a === '' ? [] : a.split(SEP);
  const y = b === '' ? [] : b.split(SEP);
  const common = commonNames(x, y);
  return x.length - common + (y.length - common) >= 2;
}

/** Which facts the guard compares (nearDedupConfig.numbers_must_match / entities_must_match). */
export interface FactsGuardConfig {
  numbers_must_match: boolean;
  entities_must_match: boolean;
}

const PART = '\u001e';

/** A row's facts for the guard: its numbers and entities, as one string ('' when it has none or the guard is off). */
export function factsOf(text: string, cfg: FactsGuardConfig): string {
  const n = cfg.numbers_must_match ? numberSequence(text) : '';
  const e = cfg.entities_must_match ? entitySequence(text) : '';
  return n === '' && e === '' ? '' : `${n}${PART}${e}`;
}

/** Why a near-duplicate pair must not merge ('numbers' or 'entities'), or undefined when its facts agree. */
export function factsDiffer(a: string, b: string): 'numbers' | 'entities' | undefined {
  if (a === b || a === '' || b === '') return undefined;
  const [na = '', ea = ''] = a.split(PART);
  const [nb = '', eb = ''] = b.split(PART);
  if (numbersConflict(na, nb)) return 'numbers';
  if (entitiesConflict(ea, eb)) return 'entities';
  return undefined;
}

/**
 * The row a guard keeps although LSH put it in a keeper's cluster: tagged with the keeper it resembles and why
 * (`near_dup_of`, `near_dup_numbers_differ` / `near_dup_entities_differ`), counted by the caller.
 */
export function keptByGuard<R extends { meta?: Record<string, unknown> }>(
  row: R,
  keeper: string,
  why: 'numbers' | 'entities',
): R {
  row.meta = { ...(row.meta ?? {}), near_dup_of: keeper, [`near_dup_${why}_differ`]: true };
  return row;
}
