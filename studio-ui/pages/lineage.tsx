// Lineage: `loom run` from the page (each stage ran or skipped, and why), the stage records with their input and
// output content hashes, and the lineage graph of any run: data hash → config → checkpoint → export → endpoint →
// eval results, upstream and downstream of the run picked (the same `lineageOf` as `loom lineage`).
import { useEffect, useState } from 'preact/hooks';
import { api, fmt, Picker, shortHash, Status, t, useApi, word } from '../lib.tsx';

const STAGES = ['', 'data', 'train', 'eval', 'export', 'serve'];

interface StageReport { stage: string; status: string; reason: string; runId: string; summary: string; seconds: number }
interface PipelineJob { config: string; status: string; error?: string; report?: { stages: StageReport[] }; log: string[] }
interface StageRecord { runId: string; stage: string; status: string; startedAt: string; inputs: Record<string, string>; outputs: Record<string, string>; summary: string }
interface LNode { id: string; kind: string; status: string; outputDir: string; createdAt: string; datasetHash?: string; baseModel?: string; inputs?: Record<string, string>; outputs?: Record<string, string>; summary?: string; metrics?: Record<string, number> }
interface Lineage { target: LNode; upstream: LNode[]; downstream: LNode[] }
interface Run { id: string; kind: string; status: string; outputDir: string }

const Hashes = ({ h }: { h?: Record<string, string> }) => <>{Object.entries(h ?? {}).map(([p, x]) => <div><code>{p}</code> {shortHash(x)}</div>)}</>;

function Pipeline({ onRan }: { onRan: () => void }) {
  const [tick, setTick] = useState(0);
  const s = useApi<{ configs: string[]; job: PipelineJob | null; stages: StageRecord[] }>('pipeline', [tick]);
  const [cfg, setCfg] = useState('');
  const [from, setFrom] = useState('');
  const [only, setOnly] = useState('');
  const [force, setForce] = useState(false);
  const [err, setErr] = useState('');
  const job = s.data?.job;
  const running = job?.status === 'running';
  useEffect(() => {
    if (!running) { if (job) onRan(); return; }
    const id = setTimeout(() => setTick(tick + 1), 1000);
    return () => clearTimeout(id);
  }, [s.data, tick]);
  const config = cfg || s.data?.configs[0] || '';
  const act = (f: () => Promise<unknown>) => () => { setErr(''); f().then(() => setTick(tick + 1), (e: Error) => setErr(e.message)); };
  const stageLabels = { '': t('lineage.allStages') };
  return (
    <>
      <h3>{t('lineage.pipeline')}</h3>
      <Status s={s}>{(d) => d.configs.length === 0 ? <p>{t('lineage.noPipeline')}</p> : (
        <form onSubmit={(e) => { e.preventDefault(); act(() => api('pipeline/start', { config, force, ...(from ? { from } : {}), ...(only ? { only } : {}) }))(); }}>
          <Picker id="pl" label={t('lineage.pipelineConfig')} items={d.configs} value={config} onChange={setCfg} />
          <Picker id="pl-from" label={t('lineage.fromStage')} items={STAGES} labels={stageLabels} value={from} onChange={setFrom} />
          <Picker id="pl-only" label={t('lineage.only')} items={STAGES} labels={stageLabels} value={only} onChange={setOnly} />
          <label><input type="checkbox" checked={force} onChange={(e) => setForce((e.target as HTMLInputElement).checked)} /> {t('lineage.force')}</label>
          <div>
            <button type="submit" disabled={running}>{t('lineage.run')}</button>{' '}
            <button type="button" disabled={!running} onClick={act(() => api('pipeline/stop', {}))}>{t('training.stop')}</button>
          </div>
        </form>
      )}</Status>
      {err && <p class="error" role="alert">{err}</p>}
      {job && (
        <div aria-live="polite" data-testid="pipeline-job">
          <p data-testid="pipeline-status">{t('training.job')}: {job.config} · {word(job.status)} {job.error ?? ''}</p>
          {job.report && <table><thead><tr><th>{t('lineage.stage')}</th><th>{t('lineage.result')}</th><th>{t('lineage.reason')}</th><th>{t('lineage.runId')}</th><th>{t('lineage.seconds')}</th><th>{t('lineage.summary')}</th></tr></thead>
            <tbody>{job.report.stages.map((x) => <tr><td>{x.stage}</td><td>{word(x.status)}</td><td>{x.reason}</td><td><code>{x.runId}</code></td><td>{x.seconds.toFixed(1)}</td><td><pre>{x.summary}</pre></td></tr>)}</tbody></table>}
          {running && <pre>{job.log.slice(-20).join('\n')}</pre>}
        </div>
      )}
      {s.data && s.data.stages.length > 0 && (
        <details>
          <summary>{t('lineage.history')}</summary>
          <table><thead><tr><th>{t('lineage.stage')}</th><th>{t('lineage.runId')}</th><th>{t('common.status')}</th><th>{t('common.created')}</th><th>{t('lineage.inputs')}</th><th>{t('lineage.outputs')}</th></tr></thead>
            <tbody>{s.data.stages.map((x) => <tr><td>{x.stage}</td><td><code>{x.runId}</code></td><td>{word(x.status)}</td><td>{x.startedAt}</td><td><Hashes h={x.inputs} /></td><td><Hashes h={x.outputs} /></td></tr>)}</tbody></table>
        </details>
      )}
    </>
  );
}

function NodeBox({ n, role, pick }: { n: LNode; role: 'up' | 'target' | 'down'; pick: (id: string) => void }) {
  return (
    <li class={`node ${role}`}>
      <strong>{n.kind}</strong> <code>{n.id}</code> · {word(n.status)} · <code>{n.outputDir}</code>
      {n.datasetHash && <div>{t('lineage.dataset')} {shortHash(n.datasetHash)}</div>}
      {n.baseModel && <div>{t('lineage.base')} <code>{n.baseModel}</code></div>}
      {n.inputs && <div>{t('lineage.inputs')}: <Hashes h={n.inputs} /></div>}
      {n.outputs && Object.keys(n.outputs).length > 0 && <div>{t('lineage.outputs')}: <Hashes h={n.outputs} /></div>}
      {n.metrics && <div>{Object.entries(n.metrics).slice(0, 6).map(([k, v]) => `${k} ${fmt(v)}`).join(' · ')}</div>}
      {role !== 'target' && <button type="button" onClick={() => pick(n.id)}>{t('lineage.trace')}</button>}
    </li>
  );
}

export function LineagePage() {
  const [tick, setTick] = useState(0);
  const s = useApi<{ edges: { from: string; to: string; relation: string }[]; runs: Run[] }>('lineage', [tick]);
  const [sel, setSel] = useState('');
  const cur = sel || s.data?.runs[0]?.id || '';
  const l = useApi<Lineage>(cur ? `lineage/of?artefact=${encodeURIComponent(cur)}` : null, [tick]);
  const labels = Object.fromEntries((s.data?.runs ?? []).map((r) => [r.id, `${r.kind} · ${r.id} · ${r.outputDir}`]));
  return (
    <section>
      <h2>{t('lineage.heading')}</h2>
      <Pipeline onRan={() => setTick((n) => n + 1)} />
      <h3>{t('lineage.graph')}</h3>
      <p>{t('lineage.explain')}</p>
      <Status s={s}>{(d) => <Picker id="lin" label={t('lineage.pick')} items={d.runs.map((r) => r.id)} labels={labels} value={cur} onChange={setSel} />}</Status>
      {cur && <Status s={l}>{(g) => (
        <div data-testid="lineage-graph">
          <h4>{t('lineage.upstream')}</h4>
          {g.upstream.length === 0 ? <p>{t('common.none')}</p> : <ol class="graph">{[...g.upstream].reverse().map((n) => <NodeBox n={n} role="up" pick={setSel} />)}</ol>}
          <ol class="graph"><NodeBox n={g.target} role="target" pick={setSel} /></ol>
          <h4>{t('lineage.downstream')}</h4>
          {g.downstream.length === 0 ? <p>{t('common.none')}</p> : <ol class="graph">{g.downstream.map((n) => <NodeBox n={n} role="down" pick={setSel} />)}</ol>}
        </div>
      )}</Status>}
      <Status s={s}>{(d) => d.edges.length === 0 ? null : (
        <details>
          <summary>{t('lineage.files')}</summary>
          <table><thead><tr><th>{t('lineage.from')}</th><th>{t('lineage.relation')}</th><th>{t('lineage.to')}</th></tr></thead>
            <tbody>{d.edges.map((e) => <tr><td>{e.from}</td><td>{e.relation}</td><td>{e.to}</td></tr>)}</tbody></table>
        </details>
      )}</Status>
    </section>
  );
}
