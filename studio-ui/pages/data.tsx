// Projects and Datasets: what the project folder holds, the data stage's report, rejected rows, samples, and the
// token view (what the loss mask trains, from the same function as `loom train --show-tokens`).
import { useState } from 'preact/hooks';
import { api, Picker, Status, t, useApi } from '../lib.tsx';

interface ProjectInfo { dir: string; datasets: string[]; trainRuns: string[]; evalRuns: string[]; models: string[]; configs: { path: string; kind: string }[] }

export function Projects() {
  const s = useApi<ProjectInfo>('project');
  return (
    <section>
      <h2>{t('projects.heading')}</h2>
      <Status s={s}>{(p) => (
        <>
          <p>{t('projects.dir')}: <code>{p.dir}</code></p>
          <p>{t('projects.counts', { datasets: p.datasets.length, runs: p.trainRuns.length, evals: p.evalRuns.length, models: p.models.length })}</p>
          <h3>{t('projects.configs')}</h3>
          <table><thead><tr><th>{t('common.path')}</th><th>{t('projects.kind')}</th></tr></thead>
            <tbody>{p.configs.map((c) => <tr><td>{c.path}</td><td>{c.kind}</td></tr>)}</tbody></table>
        </>
      )}</Status>
    </section>
  );
}

const rowText = (r: Record<string, unknown>): string => {
  const m = r.messages as { role: string; content: string }[] | undefined;
  if (Array.isArray(m)) return m.map((x) => `${x.role}: ${x.content}`).join('\n');
  return String(r.text ?? r.prompt ?? JSON.stringify(r)).slice(0, 600);
};

interface Masked { file: string; line: number; tokens: number; trained: number; overCutoff?: 'cut' | 'dropped'; spans: { text: string; weight: number }[] }

function TokenView({ dataset, configs }: { dataset: string; configs: string[] }) {
  const [cfg, setCfg] = useState('');
  const [split, setSplit] = useState('train');
  const [n, setN] = useState(3);
  const [res, setRes] = useState<{ examples: Masked[] } | null>(null);
  const [err, setErr] = useState('');
  const config = cfg || configs[0] || '';
  const show = (e: Event) => {
    e.preventDefault();
    setErr('');
    api<{ examples: Masked[] }>(`datasets/tokens?path=${encodeURIComponent(dataset)}&which=${split}&n=${n}${config ? `&config=${encodeURIComponent(config)}` : ''}`)
      .then(setRes, (x: Error) => setErr(x.message));
  };
  return (
    <>
      <h3>{t('tokens.heading')}</h3>
      <p>{t('tokens.explain')}</p>
      <form onSubmit={show}>
        <Picker id="tok-cfg" label={t('tokens.config')} items={configs} value={config} onChange={setCfg} />
        <Picker id="tok-split" label={t('datasets.split')} items={['train', 'validation', 'test']} value={split} onChange={setSplit} />
        <label for="tok-n">{t('tokens.count')}</label>
        <input id="tok-n" type="number" min={1} max={50} value={n} onInput={(e) => setN(Number((e.target as HTMLInputElement).value))} />
        <div><button type="submit">{t('tokens.show')}</button></div>
      </form>
      {err && <p class="error" role="alert">{err}</p>}
      {res && (
        <div data-testid="tokens">
          <p class="legend"><mark class="trained">{t('tokens.trained')}</mark> <mark class="weighted">{t('tokens.weighted')}</mark> <span>{t('tokens.untrained')}</span></p>
          {res.examples.map((x) => (
            <figure class="tokens">
              <figcaption>{x.file}:{x.line} · {t('tokens.summary', { tokens: x.tokens, trained: x.trained })}{x.overCutoff ? ` · ${t(x.overCutoff === 'cut' ? 'tokens.cut' : 'tokens.dropped')}` : ''}</figcaption>
              <pre>{x.spans.map((s) => s.weight <= 0 ? <span>{s.text}</span> : <mark class={s.weight === 1 ? 'trained' : 'weighted'} title={`${t('tokens.weight')} ${s.weight}`}>{s.text}</mark>)}</pre>
            </figure>
          ))}
        </div>
      )}
    </>
  );
}

export function Datasets() {
  const list = useApi<{ datasets: string[] }>('datasets');
  const runs = useApi<{ configs: string[] }>('training/runs');
  const [sel, setSel] = useState('');
  const cur = sel || list.data?.datasets[0] || '';
  const q = encodeURIComponent(cur);
  const rep = useApi<{ report: { totals: Record<string, number>; steps: { step: string; in: number; out: number }[] } }>(cur ? `datasets/report?path=${q}` : null);
  const rej = useApi<{ rows: Record<string, unknown>[] }>(cur ? `datasets/rows?path=${q}&which=rejects&limit=50` : null);
  const kept = useApi<{ rows: Record<string, unknown>[] }>(cur ? `datasets/rows?path=${q}&which=train&limit=10` : null);
  return (
    <section>
      <h2>{t('datasets.heading')}</h2>
      <Status s={list}>{(d) => <Picker id="ds" label={t('datasets.pick')} items={d.datasets} value={cur} onChange={setSel} />}</Status>
      {cur && <Status s={rep}>{(r) => (
        <>
          <h3>{t('datasets.totals')}</h3>
          <table><tbody>
            <tr><th>{t('datasets.inputRows')}</th><td>{r.report.totals.input_rows}</td></tr>
            <tr><th>{t('datasets.outputRows')}</th><td>{r.report.totals.output_rows}</td></tr>
            <tr><th>{t('datasets.dropped')}</th><td>{r.report.totals.dropped}</td></tr>
            <tr><th>{t('datasets.changed')}</th><td>{r.report.totals.changed}</td></tr>
          </tbody></table>
          <h3>{t('datasets.steps')}</h3>
          <table><thead><tr><th>{t('datasets.step')}</th><th>{t('datasets.in')}</th><th>{t('datasets.out')}</th></tr></thead>
            <tbody>{r.report.steps.map((s) => <tr><td>{s.step}</td><td>{s.in}</td><td>{s.out}</td></tr>)}</tbody></table>
        </>
      )}</Status>}
      {cur && <Status s={rej}>{(r) => (
        <>
          <h3>{t('datasets.rejected')}</h3>
          <table><thead><tr><th>{t('datasets.step')}</th><th>{t('datasets.action')}</th><th>{t('datasets.reason')}</th><th>{t('datasets.source')}</th><th>{t('datasets.text')}</th></tr></thead>
            <tbody>{r.rows.map((x) => {
              const src = x.source as { file?: string; line?: number } | undefined;
              return <tr><td>{String(x.step)}</td><td>{String(x.action ?? 'dropped')}</td><td>{String(x.reason)}</td><td>{src ? `${src.file}:${src.line}` : ''}</td><td>{x.row ? rowText(x.row as Record<string, unknown>) : String(x.raw ?? '')}</td></tr>;
            })}</tbody></table>
        </>
      )}</Status>}
      {cur && <Status s={kept}>{(r) => (
        <>
          <h3>{t('datasets.samples')}</h3>
          <table><tbody>{r.rows.map((x) => <tr><td><pre>{rowText(x)}</pre></td></tr>)}</tbody></table>
        </>
      )}</Status>}
      {cur && runs.data && <TokenView dataset={cur} configs={runs.data.configs} />}
    </section>
  );
}
