/**
 * BLEU, chrF and ROUGE on 10k sentence pairs (English and Chinese), our time beside sacrebleu / rouge-score run
 * with the machine's Python from source snapshots. Prints JSON lines.
 *
 * Pairs: references are sentences from ../shared/datasets (tinyshakespeare lines for en, CrossWOZ turns for zh);
 * hypotheses are seeded perturbations of them (dropped, swapped, substituted and repeated words/characters).
 *
 * Each repeat runs our three metrics, then one fresh Python process timing sacrebleu / rouge-score on the same
 * files (import time excluded); medians over the repeats are reported, plus our first (cold JIT) run.
 *
 * Python side (optional): SACREBLEU_SRC points at a sacrebleu checkout (folder holding sacrebleu/), ROUGE_SRC at a
 * folder holding rouge_score/; PYTHON at an interpreter with numpy, regex, nltk, six. Missing → "not compared".
 *
 *   npx tsx bench/eval/metrics.ts [--n 10000] [--repeat 3]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.ts';
import { Bleu } from '../../src/eval/metrics/bleu.ts';
import { Chrf } from '../../src/eval/metrics/chrf.ts';
import { RougeScorer } from '../../src/eval/metrics/rouge.ts';

const args = process.argv.slice(2);
const argOf = (k: string, d: number) => {
  const i = args.indexOf(k);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const N = argOf('--n', 10000);
const REPEAT = argOf('--repeat', 3);
const DATA = new URL('../../../shared/datasets/', import.meta.url).pathname;

function englishSentences(): string[] {
  const lines = readFileSync(join(DATA, 'tinyshakespeare_en/input.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.endsWith(':'));
  const out: string[] = [];
  // Two consecutive verse lines make a sentence of typical MT length (~15-20 words).
  for (let i = 0; i + 1 < lines.length && out.length < N; i += 2) out.push(`${lines[i]} ${lines[i + 1]}`);
  return out;
}

function chineseSentences(): string[] {
  const out: string[] = [];
  for (const f of ['crosswoz_zh/dialogues_test.jsonl', 'crosswoz_zh/dialogues_val.jsonl']) {
    for (const line of readFileSync(join(DATA, f), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const d = JSON.parse(line) as { messages: { content: string }[] };
      for (const m of d.messages) if (m.content.length >= 8) out.push(m.content.replace(/\s+/g, ' ').trim());
    }
  }
  while (out.length < N) out.push(...out.slice(0, N - out.length));
  return out.slice(0, N);
}

/** Seeded edits on units (words for en, characters for zh). */
function perturb(units: string[], rng: Rng, vocab: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < units.length; i++) {
    const r = rng.intUnbiased(100);
    if (r < 8) continue;
    if (r < 14) out.push(vocab[rng.intUnbiased(vocab.length)]);
    else if (r < 18 && i + 1 < units.length) {
      out.push(units[i + 1], units[i]);
      i++;
    } else if (r < 21) out.push(units[i], units[i]);
    else out.push(units[i]);
  }
  return out;
}

function makePairs(lang: 'en' | 'zh'): { hyps: string[]; refs: string[] } {
  const refs = lang === 'en' ? englishSentences() : chineseSentences();
  const rng = new Rng(lang === 'en' ? 1 : 2);
  const split = (s: string) => (lang === 'en' ? s.split(' ') : [...s]);
  const vocab = refs.slice(0, 2000).flatMap(split);
  const hyps = refs.map((r) => perturb(split(r), rng, vocab).join(lang === 'en' ? ' ' : ''));
  return { hyps, refs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const PY_SCRIPT = String.raw`
import json, sys, time, statistics
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
from sacrebleu.metrics import BLEU, CHRF
from rouge_score import rouge_scorer
lang, hyp_path, ref_path, repeat = sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
hyps = open(hyp_path, encoding='utf-8').read().split('\n')
refs = open(ref_path, encoding='utf-8').read().split('\n')
class CharTok:
    def tokenize(self, text):
        return [c for c in text if not c.isspace()]
def timed(fn):
    ts, cs, v = [], [], None
    for _ in range(repeat):
        t0 = time.perf_counter(); c0 = time.process_time(); v = fn()
        ts.append((time.perf_counter() - t0) * 1000); cs.append((time.process_time() - c0) * 1000)
    return statistics.median(ts), statistics.median(cs), v
def rouge():
    sc = rouge_scorer.RougeScorer(['rouge1', 'rouge2', 'rougeL'], tokenizer=CharTok() if lang == 'zh' else None)
    tot = 0.0
    for h, r in zip(hyps, refs):
        tot += sc.score(r, h)['rougeL'].fmeasure
    return tot / len(hyps)
out = {}
out['bleu'] = timed(lambda: BLEU(tokenize='zh' if lang == 'zh' else '13a').corpus_score(hyps, [refs]).score)
out['chrf'] = timed(lambda: CHRF().corpus_score(hyps, [refs]).score)
out['rouge'] = timed(rouge)
print(json.dumps(out))
`;

function pythonReference(
  lang: string,
  hyps: string[],
  refs: string[],
): Record<string, [number, number, number]> | string {
  const py = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const sb = process.env.SACREBLEU_SRC ?? '/tmp/pyref/sacrebleu';
  const rs = process.env.ROUGE_SRC ?? '/tmp/pyref';
  if (!existsSync(join(sb, 'sacrebleu')) || !existsSync(join(rs, 'rouge_score'))) {
    return `no sacrebleu/rouge_score source (set SACREBLEU_SRC and ROUGE_SRC)`;
  }
  const dir = mkdtempSync(join(tmpdir(), 'loom-bench-'));
  try {
    writeFileSync(join(dir, 'hyp.txt'), hyps.join('\n'));
    writeFileSync(join(dir, 'ref.txt'), refs.join('\n'));
    const scriptPath = join(dir, 'ref.py');
    writeFileSync(scriptPath, PY_SCRIPT);
    const r = spawnSync(py, [scriptPath, sb, rs, lang, join(dir, 'hyp.txt'), join(dir, 'ref.txt'), '1'], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (r.status !== 0) return `python failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
    return JSON.parse(r.stdout) as Record<string, [number, number, number]>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** [wall ms, cpu ms, score] per metric. */
function runOurs(lang: 'en' | 'zh', hyps: string[], refs: string[]): Record<string, [number, number, number]> {
  const t = (fn: () => number): [number, number, number] => {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const v = fn();
    const c = process.cpuUsage(c0);
    return [Number(process.hrtime.bigint() - t0) / 1e6, (c.user + c.system) / 1000, v];
  };
  return {
    bleu: t(() => new Bleu({ tokenize: lang === 'zh' ? 'zh' : '13a' }).corpusScore(hyps, [refs]).score),
    chrf: t(() => new Chrf().corpusScore(hyps, [refs]).score),
    rouge: t(() => {
      const sc = new RougeScorer(['rouge1', 'rouge2', 'rougeL'], { tokenizer: lang === 'zh' ? 'char' : 'default' });
      let tot = 0;
      for (let i = 0; i < hyps.length; i++) tot += sc.score(refs[i], hyps[i]).rougeL.fmeasure;
      return tot / hyps.length;
    }),
  };
}

// Ours and the reference alternate, so that load from other processes hits both alike; medians are reported.
for (const lang of ['en', 'zh'] as const) {
  const { hyps, refs } = makePairs(lang);
  const ours: Record<string, [number, number, number]>[] = [];
  const theirs: Record<string, [number, number, number]>[] = [];
  let refError: string | null = null;
  for (let r = 0; r < REPEAT; r++) {
    ours.push(runOurs(lang, hyps, refs));
    if (refError === null) {
      const ref = pythonReference(lang, hyps, refs);
      if (typeof ref === 'string') refError = ref;
      else theirs.push(ref);
    }
  }
  const r1 = (x: number) => Math.round(x * 10) / 10;
  for (const metric of ['bleu', 'chrf', 'rouge'] as const) {
    const oursMs = median(ours.map((o) => o[metric][0]));
    const oursCpu = median(ours.map((o) => o[metric][1]));
    const line: Record<string, unknown> = {
      bench: `eval.metrics.${metric}`,
      lang,
      pairs: hyps.length,
      repeats: REPEAT,
      ours_ms: r1(oursMs),
      ours_cpu_ms: r1(oursCpu),
      ours_first_ms: r1(ours[0][metric][0]),
      ours_score: ours[0][metric][2],
    };
    if (refError !== null) line.reference = `not compared: ${refError}`;
    else {
      const ms = median(theirs.map((t) => t[metric][0]));
      const cpu = median(theirs.map((t) => t[metric][1]));
      const score = theirs[0][metric][2];
      line.reference = metric === 'rouge' ? 'rouge-score 0.1.2 (python)' : 'sacrebleu 2.6.0 (python)';
      line.ref_ms = r1(ms);
      line.ref_cpu_ms = r1(cpu);
      line.ref_score = score;
      line.score_abs_diff = Math.abs(score - ours[0][metric][2]);
      line.speedup_wall = r1(ms / oursMs);
      line.speedup_cpu = r1(cpu / oursCpu);
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
}
