import type { Command } from 'commander';
import { LoomError } from '../core/errors.ts';
import type { BleuSmoothMethod } from '../eval/metrics/bleu.ts';
import type { BleuTokenizerName } from '../eval/metrics/bleu-tokenizers.ts';
import type { ClassificationReport } from '../eval/metrics/classify.ts';
import type { RougeTokenizerName } from '../eval/metrics/rouge-tokenizers.ts';
import { METRIC_NAMES, type MetricRunOptions, readParallel, readSegments, scoreMetric } from '../eval/metrics/run.ts';

/** `loom eval …`: metric scoring here; suite runs and run comparison register on the same command. */
export function registerEval(program: Command): Command {
  const ev = program
    .command('eval')
    .description('evaluate models: reference metrics, suites, comparisons, classifiers')
    .addHelpText('after', '\nExample:\n  $ loom eval metric bleu --hyp out.txt --ref ref.txt');
  registerEvalMetric(ev);
  return ev;
}

interface MetricCliOptions {
  hyp: string;
  ref: string[];
  json?: boolean;
  segments?: boolean;
  confidence?: number | true;
  seed?: number;
  baseline?: string;
  pairedTest?: string;
  pairedSamples?: number;
  tokenize?: string;
  lowercase?: boolean;
  smoothMethod?: string;
  smoothValue?: number;
  maxNgramOrder?: number;
  effectiveOrder?: boolean;
  charOrder?: number;
  wordOrder?: number;
  beta?: number;
  whitespace?: boolean;
  epsSmoothing?: boolean;
  rougeTypes?: string;
  stemmer?: boolean;
  tokenizer?: string;
  splitSummaries?: boolean;
  keepCase?: boolean;
  keepPunct?: boolean;
  keepArticles?: boolean;
  keepWhitespace?: boolean;
  labels?: string;
  extract?: string;
  pattern?: string;
}

const COMMON = ['hyp', 'ref', 'json', 'segments', 'confidence', 'seed', 'baseline', 'pairedTest', 'pairedSamples'];
const APPLIES: Record<string, string[]> = {
  bleu: ['tokenize', 'lowercase', 'smoothMethod', 'smoothValue', 'maxNgramOrder', 'effectiveOrder'],
  chrf: ['charOrder', 'wordOrder', 'beta', 'lowercase', 'whitespace', 'epsSmoothing'],
  rouge: ['rougeTypes', 'stemmer', 'tokenizer', 'splitSummaries'],
  em: ['keepCase', 'keepPunct', 'keepArticles', 'keepWhitespace'],
  f1: ['keepCase', 'keepPunct', 'keepArticles', 'keepWhitespace'],
  prf: ['labels', 'extract', 'pattern'],
};

const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function num(flag: string, integer = false) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x))) {
      throw new LoomError('METRIC_OPTION', `${flag} needs ${integer ? 'an integer' : 'a number'}, got '${v}'`, {
        field: flag,
      });
    }
    return x;
  };
}

function oneOf(flag: string, allowed: readonly string[]) {
  return (v: string): string => {
    if (!allowed.includes(v)) {
      throw new LoomError('METRIC_OPTION', `${flag} must be one of ${allowed.join(', ')}, got '${v}'`, { field: flag });
    }
    return v;
  };
}

const num4 = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(4));

/** Per-class precision/recall/F1 and the confusion matrix (rows gold, columns predicted) as plain text. */
function classificationTable(r: ClassificationReport): string[] {
  const w = Math.max(11, ...r.confusion.columns.map((c) => [...c].length + 2));
  const pad = (x: string | number) => String(x).padStart(w);
  const lines = [`${'label'.padEnd(w)}${pad('precision')}${pad('recall')}${pad('f1')}${pad('support')}`];
  for (const c of r.perClass) {
    lines.push(
      `${c.label.padEnd(w)}${pad(c.precision.toFixed(4))}${pad(c.recall.toFixed(4))}${pad(c.f1.toFixed(4))}${pad(c.support)}`,
    );
  }
  lines.push('', `confusion (rows gold, columns predicted)`, `${''.padEnd(w)}${r.confusion.columns.map(pad).join('')}`);
  r.confusion.matrix.forEach((row, i) => {
    lines.push(`${r.confusion.rows[i]!.padEnd(w)}${row.map(pad).join('')}`);
  });
  return lines;
}

function registerEvalMetric(ev: Command): void {
  ev.command('metric')
    .description('score a hypothesis file against reference files (one segment per line)')
    .argument('<name>', `metric: ${METRIC_NAMES.join(' | ')}`)
    .requiredOption('--hyp <file>', 'hypotheses (or predicted labels for prf), one per line')
    .option(
      '--ref <file>',
      'references (gold labels for prf); repeat for more references',
      (v, acc: string[]) => [...acc, v],
      [],
    )
    .option('--json', 'JSON lines: segment lines (with --segments), then the corpus result')
    .option('--segments', 'also print one score line per segment')
    .option(
      '--confidence [n]',
      'bootstrap confidence interval with n resamples (default 1000)',
      num('--confidence', true),
    )
    .option('--seed <n>', 'random seed for resampling', num('--seed', true))
    .option('--baseline <file>', "a second system's hypotheses: paired significance test against it")
    .option(
      '--paired-test <bs|ar>',
      'paired bootstrap (bs, default) or approximate randomization (ar)',
      oneOf('--paired-test', ['bs', 'ar']),
    )
    .option(
      '--paired-samples <n>',
      'resamples/trials for the paired test (bs 1000, ar 10000)',
      num('--paired-samples', true),
    )
    .option('--tokenize <name>', 'bleu: 13a | intl | zh | char | none (default 13a)')
    .option('--lowercase', 'bleu, chrf: case-insensitive')
    .option('--smooth-method <m>', 'bleu: exp | floor | add-k | none (default exp)')
    .option('--smooth-value <v>', 'bleu: value for floor (0.1) or add-k (1)', num('--smooth-value'))
    .option('--max-ngram-order <n>', 'bleu: maximum n-gram order (default 4)', num('--max-ngram-order', true))
    .option('--effective-order', 'bleu: effective order for the corpus score too (segments always use it)')
    .option('--char-order <n>', 'chrf: character n-gram order (default 6)', num('--char-order', true))
    .option('--word-order <n>', 'chrf: word n-gram order; 2 = chrF++ (default 0)', num('--word-order', true))
    .option('--beta <n>', 'chrf: recall weight (default 2)', num('--beta', true))
    .option('--whitespace', 'chrf: keep whitespace in character n-grams')
    .option('--eps-smoothing', 'chrf: chrF++.py-style epsilon smoothing')
    .option('--rouge-types <list>', 'rouge: comma list (default rouge1,rouge2,rougeL,rougeLsum)')
    .option('--stemmer', 'rouge: Porter stemmer (default tokenizer only)')
    .option('--tokenizer <name>', 'rouge: default | char | whitespace | jieba (use char or jieba for Chinese)')
    .option('--split-summaries', 'rouge: split rougeLsum sentences on . ! ? 。！？ as well as newlines')
    .option('--keep-case', 'em, f1: do not lowercase')
    .option('--keep-punct', 'em, f1: do not strip punctuation')
    .option('--keep-articles', 'em, f1: do not drop a/an/the')
    .option('--keep-whitespace', 'em, f1: do not collapse whitespace')
    .option('--labels <list>', 'prf: comma-separated label set (default: labels seen in the gold file)')
    .option('--extract <mode>', 'prf: pull labels out of free text: first | regex')
    .option('--pattern <re>', 'prf: regex for --extract regex (group 1 is the label)')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      `
Example:
  $ loom eval metric bleu --hyp out.txt --ref ref.txt --tokenize zh --confidence
  $ loom eval metric chrf --hyp out.txt --ref ref1.txt --ref ref2.txt --word-order 2
  $ loom eval metric rouge --hyp summ.txt --ref gold.txt --tokenizer jieba --json
  $ loom eval metric prf --hyp generations.txt --ref gold_labels.txt --extract first`,
    )
    .action((name: string, opts: MetricCliOptions, cmd: Command) => {
      const extra = cmd.args.slice(1);
      const unknown = extra.find((a) => a.startsWith('-'));
      if (unknown) {
        throw new LoomError('METRIC_OPTION', `unknown option '${unknown}' for \`loom eval metric\``, {
          hint: 'see `loom eval metric --help`',
        });
      }
      if (extra.length) throw new LoomError('METRIC_INPUT', `unexpected argument '${extra[0]}'`);
      if (!(METRIC_NAMES as readonly string[]).includes(name)) {
        throw new LoomError('METRIC_OPTION', `unknown metric '${name}'`, {
          hint: `use one of ${METRIC_NAMES.join(', ')}`,
        });
      }
      for (const key of Object.keys(opts)) {
        if (cmd.getOptionValueSource(key) !== 'cli') continue;
        if (!COMMON.includes(key) && !APPLIES[name].includes(key)) {
          throw new LoomError('METRIC_OPTION', `option ${flagOf(key)} does not apply to ${name}`, {
            field: flagOf(key),
            hint: `${name} takes ${APPLIES[name].map(flagOf).join(', ')}`,
          });
        }
      }
      const notes: string[] = [];
      const { hyps, refs } = readParallel(opts.hyp, opts.ref, notes);
      const run: MetricRunOptions = {
        bleu: {
          tokenize: opts.tokenize as BleuTokenizerName | undefined,
          lowercase: opts.lowercase,
          smoothMethod: opts.smoothMethod as BleuSmoothMethod | undefined,
          smoothValue: opts.smoothValue,
          maxNgramOrder: opts.maxNgramOrder,
          effectiveOrder: opts.effectiveOrder,
        },
        chrf: {
          charOrder: opts.charOrder,
          wordOrder: opts.wordOrder,
          beta: opts.beta,
          lowercase: opts.lowercase,
          whitespace: opts.whitespace,
          epsSmoothing: opts.epsSmoothing,
        },
        rouge: {
          types: opts.rougeTypes
            ?.split(',')
            .map((s) => s.trim())
            .filter(Boolean),
          useStemmer: opts.stemmer,
          tokenizer: opts.tokenizer as RougeTokenizerName | undefined,
          splitSummaries: opts.splitSummaries,
        },
        normalize: {
          lowercase: !opts.keepCase,
          stripPunctuation: !opts.keepPunct,
          removeArticles: !opts.keepArticles,
          normalizeWhitespace: !opts.keepWhitespace,
        },
        prf: {
          labels: opts.labels
            ?.split(',')
            .map((s) => s.trim())
            .filter(Boolean),
          extract: opts.extract
            ? { mode: oneOf('--extract', ['first', 'regex'])(opts.extract) as 'first' | 'regex', pattern: opts.pattern }
            : undefined,
        },
        bootstrap: opts.confidence === true ? 1000 : (opts.confidence ?? 0),
        seed: opts.seed,
        pairedTest: opts.pairedTest as 'bs' | 'ar' | undefined,
        pairedSamples: opts.pairedSamples,
      };
      if (opts.baseline) {
        run.baseline = readSegments(opts.baseline, 'baseline', notes);
        if (run.baseline.length !== hyps.length) {
          throw new LoomError(
            'METRIC_INPUT',
            `line counts differ: baseline ${opts.baseline} has ${run.baseline.length} lines, hypothesis ${opts.hyp} has ${hyps.length}`,
            { file: opts.baseline },
          );
        }
      }
      for (const n of notes) process.stderr.write(`note: ${n}\n`);
      if (name === 'bleu' && hyps.filter((h) => h.endsWith(' .')).length >= 100) {
        // sacrebleu's hint: detokenized input is expected; tokenized input inflates the score.
        process.stderr.write(
          "warning: 100 or more hypotheses end in a tokenized period (' .'); BLEU expects detokenized text\n",
        );
      }
      const report = scoreMetric(name, hyps, refs, run);
      const out: string[] = [];
      if (opts.json) {
        if (opts.segments)
          for (const s of report.segments)
            out.push(JSON.stringify({ segment: s.index + 1, score: s.score, ...s.detail }));
        const { segments: _s, ...corpus } = report;
        out.push(JSON.stringify(corpus));
      } else {
        if (opts.segments) for (const s of report.segments) out.push(`${s.index + 1}\t${s.score}`);
        out.push(report.signature ? `${report.formatted}\n${report.signature}` : report.formatted);
        if (report.paired) {
          const p = report.paired;
          out.push(
            `paired ${p.test === 'ar' ? 'approximate randomization' : 'bootstrap'} (${p.nSamples}): baseline ${num4(p.baseline)} system ${num4(p.system)} delta ${p.delta >= 0 ? '+' : ''}${num4(p.delta)} p = ${p.pValue.toFixed(4)}`,
          );
        }
        if (name === 'prf') out.push(...classificationTable(report.detail as unknown as ClassificationReport));
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
