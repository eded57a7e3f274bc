// Lineage: `loom run` from the page (each stage ran or skipped, and why), the stage records with their input and
// output content hashes, and the project's lineage drawn as a DAG (one dataset → several training runs → evals and
// exports per run → endpoints; src/studio/dag.ts lays it out): a click or Enter on a run traces everything upstream
// and downstream of it, the same links `loom lineage` walks.
import { useEffect, useState } from 'preact/hooks';
import { DICTIONARIES, type MessageKey } from '../../src/studio/i18n.ts';
import { type DagLayout, layoutDag, traceDag } from '../../src/studio/dag.ts';
import { api, fmt, lang, Picker, shortHash, Status, t, useApi, word } from '../lib.tsx';

const STAGES = ['', 'data', 'train', 'eval', 'export', 'serve'];

interface StageReport { stage: string; status: string; reason: string; runId: string; summary: string; seconds: number }
interface PipelineJob { config: string; status: string; error?: string; report?: { stages: StageReport[] }; log: string[] }
interface StageRecord { runId: string; stage: string; status: string; startedAt: string; inputs: Record<string, string>; outputs: Record<string, string>; summary: string }
interface LNode { id: string; kind: string; status: string; outputDir: string; createdAt: string; datasetHash?: string; baseModel?: string; inputs?: Record<string, string>; outputs?: Record<string, string>; summary?: string; metrics?: Record<string, number> }
interface LEdge { from: string; to: string; relation: 'parent' | 'feeds' | 'recorded' }
interface Graph { nodes: LNode[]; edges: LEdge[] }
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
      <strong>{n.kind}</strong> <code>{n.id}</code> ({kindLabel(n.kind)}) · {word(n.status)} · <code>{n.outputDir}</code>
      {n.datasetHash && <div>{t('lineage.dataset')} {shortHash(n.datasetHash)}</div>}
      {n.baseModel && <div>{t('lineage.base')} <code>{n.baseModel}</code></div>}
      {n.inputs && <div>{t('lineage.inputs')}: <Hashes h={n.inputs} /></div>}
      {n.outputs && Object.keys(n.outputs).length > 0 && <div>{t('lineage.outputs')}: <Hashes h={n.outputs} /></div>}
      {n.metrics && <div>{Object.entries(n.metrics).slice(0, 6).map(([k, v]) => `${k} ${fmt(v)}`).join(' · ')}</div>}
      {role !== 'target' && <button type="button" onClick={() => pick(n.id)}>{t('lineage.trace')}</button>}
    </li>
  );
}

/** A run's kind in the page's language (pipeline:train → "train stage" / 训练阶段), the raw kind when it has none. */
const kindLabel = (k: string) => { const key = `lineage.kind.${k}`; return key in DICTIONARIES[lang] ? t(key as MessageKey) : k; };

function Dag({ g, L, sel, pick }: { g: Graph; L: DagLayout; sel: string; pick: (id: string) => void }) {
  const tr = traceDag(sel, g.edges);
  const role = (id: string) => (id === sel ? 'target' : tr.ancestors.has(id) ? 'up' : tr.descendants.has(id) ? 'down' : 'dim');
  const onPath = (e: LEdge) =>
    (tr.ancestors.has(e.from) && (e.to === sel || tr.ancestors.has(e.to))) ? 'up'
      : (tr.descendants.has(e.to) && (e.from === sel || tr.descendants.has(e.from))) ? 'down' : 'dim';
  const focus = (id: string | undefined) => { if (id) (document.querySelector(`[data-node-id="${CSS.escape(id)}"]`) as SVGGElement | null)?.focus(); };
  const key = (id: string) => (e: KeyboardEvent) => {
    const col = L.columns[L.layer[id]!]!;
    const i = col.indexOf(id);
    const moves: Record<string, () => string | undefined> = {
      ArrowUp: () => col[i - 1],
      ArrowDown: () => col[i + 1],
      ArrowLeft: () => g.edges.find((x) => x.to === id)?.from,
      ArrowRight: () => g.edges.find((x) => x.from === id)?.to,
    };
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(id); }
    else if (moves[e.key]) { e.preventDefault(); focus(moves[e.key]!()); }
  };
  const pad = 8;
  return (
    <svg class="dag" role="group" aria-label={t('lineage.dagLabel', { nodes: g.nodes.length, edges: g.edges.length })} width={L.width + 2 * pad + 12} height={L.height + 2 * pad} viewBox={`${-pad} ${-pad} ${L.width + 2 * pad + 12} ${L.height + 2 * pad}`}>
      <defs>
        {['up', 'down', 'dim'].map((c) => <marker id={`arrow-${c}`} class={c} viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" /></marker>)}
      </defs>
      {g.edges.map((e, i) => {
        const p = L.paths[i]!;
        if (p.length < 2) return null;
        const d = p.slice(1).reduce((acc, q, k) => { const a = p[k]!; const mx = (a.x + q.x) / 2; return `${acc} C ${mx} ${a.y}, ${mx} ${q.y}, ${q.x} ${q.y}`; }, `M ${p[0]!.x} ${p[0]!.y}`);
        const c = onPath(e);
        return <path class={`edge ${c} ${e.relation}`} d={d} data-edge={`${e.from}->${e.to}`} marker-end={`url(#arrow-${c})`}><title>{`${e.from} → ${e.to}: ${t(`lineage.edge.${e.relation}` as MessageKey)}`}</title></path>;
      })}
      {g.nodes.map((n) => {
        const at = L.pos[n.id]!;
        const r = role(n.id);
        return (
          <g class={`dnode ${r}`} data-node-id={n.id} transform={`translate(${at.x} ${at.y})`} tabindex="0" role="button" aria-pressed={n.id === sel} aria-label={`${kindLabel(n.kind)} ${n.id} ${word(n.status)}`} onClick={() => pick(n.id)} onKeyDown={key(n.id)}>
            <rect width="230" height="52" rx="6" />
            <text x="8" y="19" class="kind">{kindLabel(n.kind)} · {word(n.status)}</text>
            <text x="8" y="38" class="id">{n.id}</text>
          </g>
        );
      })}
    </svg>
  );
}

export function LineagePage() {
  const [tick, setTick] = useState(0);
  const s = useApi<{ edges: { from: string; to: string; relation: string }[]; runs: Run[] }>('lineage', [tick]);
  const graph = useApi<Graph>('lineage/graph', [tick]);
  const [sel, setSel] = useState('');
  const cur = sel || s.data?.runs[0]?.id || '';
  const labels = Object.fromEntries((s.data?.runs ?? []).map((r) => [r.id, `${r.kind} · ${r.id} · ${r.outputDir}`]));
  return (
    <section>
      <h2>{t('lineage.heading')}</h2>
      <Pipeline onRan={() => setTick((n) => n + 1)} />
      <h3>{t('lineage.graph')}</h3>
      <p>{t('lineage.explain')}</p>
      <p>{t('lineage.howTo')}</p>
      <Status s={s}>{(d) => <Picker id="lin" label={t('lineage.pick')} items={d.runs.map((r) => r.id)} labels={labels} value={cur} onChange={setSel} />}</Status>
      <Status s={graph}>{(g) => {
        if (g.nodes.length === 0) return <p>{t('common.none')}</p>;
        const L = layoutDag(g.nodes.map((n) => n.id), g.edges, { nodeWidth: 230, nodeHeight: 52, columnGap: 56, rowGap: 16 });
        const target = g.nodes.find((n) => n.id === cur) ?? g.nodes[g.nodes.length - 1]!;
        const tr = traceDag(target.id, g.edges);
        // upstream oldest first, downstream in creation order (nodes come oldest first)
        const up = g.nodes.filter((n) => tr.ancestors.has(n.id));
        const down = g.nodes.filter((n) => tr.descendants.has(n.id));
        return (
          <div data-testid="lineage-graph">
            <div class="dag-wrap"><Dag g={g} L={L} sel={target.id} pick={setSel} /></div>
            <h4>{t('lineage.selected')}</h4>
            <ol class="graph"><NodeBox n={target} role="target" pick={setSel} /></ol>
            <h4>{t('lineage.upstream')}</h4>
            {up.length === 0 ? <p>{t('common.none')}</p> : <ol class="graph">{up.map((n) => <NodeBox n={n} role="up" pick={setSel} />)}</ol>}
            <h4>{t('lineage.downstream')}</h4>
            {down.length === 0 ? <p>{t('common.none')}</p> : <ol class="graph">{down.map((n) => <NodeBox n={n} role="down" pick={setSel} />)}</ol>}
          </div>
        );
      }}</Status>
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
