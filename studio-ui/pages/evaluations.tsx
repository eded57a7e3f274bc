// Evaluations: per task × model × metric scores with intervals, per-example rows, transcripts, and two runs compared.
import { useState } from 'preact/hooks';
import { fmt, Picker, Status, t, useApi } from '../lib.tsx';

interface Usage { requests?: number; costPer1kRequestsUsd?: number; meanLatencyMs?: number; price?: { origin: 'table' | 'suite'; verified: boolean; asOf?: string } }
interface EvalRun { usage?: Record<string, Usage>; tasks: { task: string; model: string; summary: Record<string, { score: number; ci?: [number, number] }>; examples: { id: string; input: string; hypothesis: string; references: string[]; scores: Record<string, number> }[]; conversations?: unknown[] }[] }

/** Which price a cost rests on: a verified list price (and its date), an unverified estimate, or the suite's own. */
function PriceCell({ u }: { u: Usage }) {
  if (u.costPer1kRequestsUsd === undefined || !u.price) return <td>{t('evaluations.noPrice')}</td>;
  const p = u.price;
  const text = p.origin === 'suite' ? t('evaluations.priceSuite') : t(p.verified ? 'evaluations.priceVerified' : 'evaluations.priceUnverified', { date: p.asOf ?? '' });
  return <td data-price={p.verified ? 'verified' : 'unverified'} class={p.verified ? '' : 'warn'}>{text}</td>;
}

export function Evaluations() {
  const list = useApi<{ runs: { path: string }[] }>('evaluations');
  const paths = list.data?.runs.map((r) => r.path) ?? [];
  const [sel, setSel] = useState('');
  const [other, setOther] = useState('');
  const cur = sel || paths[0] || '';
  const run = useApi<EvalRun>(cur ? `evaluations/run?path=${encodeURIComponent(cur)}` : null);
  const cmp = useApi<{ rows: { task: string; model: string; metric: string; a?: number; b?: number; delta?: number }[] }>(
    cur && other ? `evaluations/compare?a=${encodeURIComponent(cur)}&b=${encodeURIComponent(other)}` : null);
  return (
    <section>
      <h2>{t('evaluations.heading')}</h2>
      <Status s={list}>{() => <Picker id="ev" label={t('evaluations.run')} items={paths} value={cur} onChange={setSel} />}</Status>
      {cur && <Status s={run}>{(r) => (
        <>
          <table><thead><tr><th>{t('evaluations.task')}</th><th>{t('evaluations.model')}</th><th>{t('evaluations.metric')}</th><th>{t('evaluations.score')}</th><th>{t('evaluations.interval')}</th></tr></thead>
            <tbody>{r.tasks.flatMap((task) => Object.entries(task.summary).map(([m, s]) => (
              <tr><td>{task.task}</td><td>{task.model}</td><td>{m}</td><td>{fmt(s.score)}</td><td>{s.ci ? `${fmt(s.ci[0])} – ${fmt(s.ci[1])}` : '–'}</td></tr>)))}</tbody></table>
          {r.usage && Object.keys(r.usage).length > 0 && <>
            <h3>{t('evaluations.models')}</h3>
            <table data-testid="eval-usage"><thead><tr><th>{t('evaluations.model')}</th><th>{t('evaluations.requests')}</th><th>{t('evaluations.costPer1k')}</th><th>{t('evaluations.price')}</th><th>{t('evaluations.latency')}</th></tr></thead>
              <tbody>{Object.entries(r.usage).map(([id, u]) => <tr><td>{id}</td><td>{u.requests ?? 0}</td><td>{fmt(u.costPer1kRequestsUsd)}</td><PriceCell u={u} /><td>{u.meanLatencyMs === undefined ? '–' : u.meanLatencyMs.toFixed(1)}</td></tr>)}</tbody></table>
          </>}
          <h3>{t('evaluations.examples')}</h3>
          {r.tasks.map((task) => (
            <details>
              <summary>{task.task} · {task.model}</summary>
              <table><thead><tr><th>{t('evaluations.input')}</th><th>{t('evaluations.hypothesis')}</th><th>{t('evaluations.reference')}</th><th>{t('evaluations.score')}</th></tr></thead>
                <tbody>{task.examples.slice(0, 50).map((e) => <tr><td>{e.input}</td><td>{e.hypothesis}</td><td>{e.references.join(' | ')}</td><td>{Object.entries(e.scores).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}</td></tr>)}</tbody></table>
              {task.conversations && <><h4>{t('evaluations.transcripts')}</h4><pre>{JSON.stringify(task.conversations, null, 1).slice(0, 4000)}</pre></>}
            </details>
          ))}
        </>
      )}</Status>}
      {paths.length > 1 && <Picker id="cmp" label={t('evaluations.compare')} items={['', ...paths]} value={other} onChange={setOther} />}
      {other && <Status s={cmp}>{(c) => (
        <table><thead><tr><th>{t('evaluations.task')}</th><th>{t('evaluations.model')}</th><th>{t('evaluations.metric')}</th><th>A</th><th>B</th><th>{t('evaluations.delta')}</th></tr></thead>
          <tbody>{c.rows.map((x) => <tr><td>{x.task}</td><td>{x.model}</td><td>{x.metric}</td><td>{fmt(x.a)}</td><td>{fmt(x.b)}</td><td>{fmt(x.delta)}</td></tr>)}</tbody></table>
      )}</Status>}
    </section>
  );
}

