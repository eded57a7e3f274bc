// The Studio pages: one Preact app, one page per nav link (real <a href> links, so the keyboard, the back button and
// a reload all work), strings from the shared dictionaries in src/studio/i18n.ts, charts drawn by uPlot.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { type Lang, type MessageKey, parseLang, translate } from '../src/studio/i18n.ts';

const PAGES = ['projects', 'datasets', 'training', 'evaluations', 'playground', 'monitor', 'lineage'] as const;
type Page = (typeof PAGES)[number];

const params = new URLSearchParams(location.search);
const lang: Lang = parseLang(params.get('lang') ?? localStorage.getItem('loom.lang'));
localStorage.setItem('loom.lang', lang);
document.documentElement.lang = lang;
const t = (k: MessageKey, v?: Record<string, string | number>) => translate(lang, k, v);
const seg = location.pathname.split('/').filter(Boolean).pop() ?? '';
const page: Page = (PAGES as readonly string[]).includes(seg) ? (seg as Page) : 'projects';
const href = (p: Page, l: Lang = lang, extra = '') => `${p}?lang=${l}${extra}`;

async function api<T>(path: string, body?: unknown): Promise<T> {
  const r = await fetch(`api/${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error?.hint ? `${j.error.message} (${j.error.hint})` : (j.error?.message ?? r.statusText));
  return j as T;
}

function useApi<T>(path: string | null, deps: unknown[] = []): { data?: T; error?: string; reload: () => void } {
  const [state, set] = useState<{ data?: T; error?: string }>({});
  const [n, setN] = useState(0);
  useEffect(() => {
    if (!path) return;
    api<T>(path).then((data) => set({ data }), (e: Error) => set({ error: e.message }));
  }, [path, n, ...deps]);
  return { ...state, reload: () => setN(n + 1) };
}

function Status<T>({ s, children }: { s: { data?: T; error?: string }; children: (d: T) => preact.ComponentChildren }) {
  if (s.error) return <p class="error" role="alert">{t('common.error')}: {s.error}</p>;
  if (!s.data) return <p>{t('common.loading')}</p>;
  return <>{children(s.data)}</>;
}

function Picker({ id, label, items, value, onChange }: { id: string; label: string; items: string[]; value: string; onChange: (v: string) => void }) {
  if (items.length === 0) return <p>{t('common.none')}</p>;
  return (
    <>
      <label for={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {items.map((i) => <option value={i}>{i}</option>)}
      </select>
    </>
  );
}

function Nav() {
  const other: Lang = lang === 'en' ? 'zh-CN' : 'en';
  return (
    <header>
      <h1>{t('app.title')}</h1>
      <nav aria-label={t('nav.label')}>
        <ul>
          {PAGES.map((p) => (
            <li><a href={href(p)} aria-current={p === page ? 'page' : undefined}>{t(`nav.${p}` as MessageKey)}</a></li>
          ))}
        </ul>
      </nav>
      <a class="lang" href={href(page, other)} hreflang={other} aria-label={t('lang.switchLabel')}>{t('lang.switch')}</a>
    </header>
  );
}

interface ProjectInfo { dir: string; datasets: string[]; trainRuns: string[]; evalRuns: string[]; models: string[]; configs: { path: string; kind: string }[] }

function Projects() {
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

function Datasets() {
  const list = useApi<{ datasets: string[] }>('datasets');
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
    </section>
  );
}

interface Curve { step: number; split: string; loss?: number; lr?: number; grad_norm?: number }

function Chart({ title, points, field }: { title: string; points: Curve[]; field: 'loss' | 'lr' | 'grad_norm' }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const tr = points.filter((p) => p.split === 'train' && p[field] !== undefined);
    if (!ref.current || tr.length === 0) return;
    const u = new uPlot({ width: 340, height: 200, title, scales: { x: { time: false } }, series: [{ label: 'step' }, { label: title, stroke: '#1f3a5f' }] },
      [tr.map((p) => p.step), tr.map((p) => p[field] as number)], ref.current);
    return () => u.destroy();
  }, [points]);
  return <figure aria-label={title} ref={ref} />;
}

interface Job { status: string; outputDir: string; runId?: string; steps?: number; lastLoss?: number; error?: string }

function Training() {
  const runs = useApi<{ runs: string[]; configs: string[] }>('training/runs');
  const [sel, setSel] = useState('');
  const cur = sel || runs.data?.runs[0] || '';
  const [tick, setTick] = useState(0);
  const run = useApi<{ curves: Curve[] }>(cur ? `training/run?path=${encodeURIComponent(cur)}` : null, [tick]);
  const job = useApi<{ job: Job | null }>('training/job', [tick]);
  useEffect(() => {
    if (job.data?.job?.status !== 'running') return;
    const id = setTimeout(() => setTick(tick + 1), 1500);
    return () => clearTimeout(id);
  }, [job.data, tick]);
  const [cfg, setCfg] = useState('');
  const [ov, setOv] = useState('max_steps=4');
  const [preview, setPreview] = useState<{ yaml: string; preflight: Record<string, number> } | null>(null);
  const [err, setErr] = useState('');
  const config = cfg || runs.data?.configs[0] || '';
  const body = (resume = false) => ({ config, overrides: ov.split('\n').map((s) => s.trim()).filter(Boolean), resume });
  const act = (f: () => Promise<unknown>) => () => { setErr(''); f().then(() => { runs.reload(); setTick(tick + 1); }, (e: Error) => setErr(e.message)); };
  const j = job.data?.job;
  return (
    <section>
      <h2>{t('training.heading')}</h2>
      <h3>{t('training.launch')}</h3>
      <form onSubmit={(e) => { e.preventDefault(); act(async () => setPreview(await api('training/preview', body())))(); }}>
        <Picker id="cfg" label={t('training.config')} items={runs.data?.configs ?? []} value={config} onChange={setCfg} />
        <label for="ov">{t('training.overrides')}</label>
        <textarea id="ov" rows={3} cols={40} value={ov} onInput={(e) => setOv((e.target as HTMLTextAreaElement).value)} />
        <div>
          <button type="submit">{t('training.preview')}</button>{' '}
          <button type="button" onClick={act(() => api('training/start', body()))}>{t('training.start')}</button>{' '}
          <button type="button" onClick={act(() => api('training/stop', {}))}>{t('training.stop')}</button>{' '}
          <button type="button" onClick={act(() => api('training/start', body(true)))}>{t('training.resume')}</button>
        </div>
      </form>
      {err && <p class="error" role="alert">{err}</p>}
      {preview && (
        <div data-testid="preview">
          <h4>{t('training.preflight')}</h4>
          <table><tbody>
            <tr><th>{t('training.params')}</th><td>{preview.preflight.trainableParams}</td></tr>
            <tr><th>{t('training.steps')}</th><td>{preview.preflight.totalSteps}</td></tr>
            <tr><th>{t('training.memory')}</th><td>{(preview.preflight.estimatedPeakBytes / 1048576).toFixed(1)} MiB</td></tr>
            <tr><th>{t('training.time')}</th><td>{preview.preflight.estimatedEpochSeconds.toFixed(1)} s</td></tr>
          </tbody></table>
          <h4>{t('training.resolved')}</h4>
          <pre>{preview.yaml}</pre>
        </div>
      )}
      {j && <p data-testid="job">{t('training.job')}: {j.status} {j.runId ?? ''} {j.outputDir} {j.lastLoss !== undefined ? `${t('training.lastLoss')} ${j.lastLoss.toFixed(4)}` : ''} {j.error ?? ''}</p>}
      <h3>{t('training.runs')}</h3>
      <Status s={runs}>{(d) => <Picker id="run" label={t('training.run')} items={d.runs} value={cur} onChange={setSel} />}</Status>
      {cur && <Status s={run}>{(r) => (
        <>
          <h4>{t('training.curves')}</h4>
          <div style="display:flex;flex-wrap:wrap;gap:1rem">
            <Chart title={t('training.loss')} points={r.curves} field="loss" />
            <Chart title={t('training.lr')} points={r.curves} field="lr" />
            <Chart title={t('training.gradNorm')} points={r.curves} field="grad_norm" />
          </div>
        </>
      )}</Status>}
    </section>
  );
}

interface EvalRun { tasks: { task: string; model: string; summary: Record<string, { score: number; ci?: [number, number] }>; examples: { id: string; input: string; hypothesis: string; references: string[]; scores: Record<string, number> }[]; conversations?: unknown[] }[] }
const fmt = (n: number | undefined) => (n === undefined ? '–' : Math.abs(n) >= 10 ? n.toFixed(2) : n.toFixed(4));

function Evaluations() {
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

interface Verdict { action: string; labels: string[] }

function Playground() {
  const models = useApi<{ models: { id: string; label: string }[] }>('playground/models');
  const [model, setModel] = useState('');
  const [msg, setMsg] = useState('');
  const [maxTokens, setMax] = useState(24);
  const [reply, setReply] = useState('');
  const [verdicts, setVerdicts] = useState<{ input?: Verdict; output?: Verdict }>({});
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState<AbortController | null>(null);
  const cur = model || models.data?.models[0]?.id || '';
  const send = async (e: Event) => {
    e.preventDefault();
    setErr(''); setReply(''); setVerdicts({});
    const ac = new AbortController();
    setBusy(ac);
    try {
      const r = await fetch('api/playground/chat', { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: cur, messages: [{ role: 'user', content: msg }], max_tokens: maxTokens }) });
      if (!r.ok) throw new Error((await r.json()).error?.message ?? r.statusText);
      const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      let text = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const ev = JSON.parse(buf.slice(0, i));
          buf = buf.slice(i + 1);
          if (ev.type === 'delta') setReply((text += ev.text));
          else if (ev.type === 'input' || ev.type === 'output') setVerdicts((v) => ({ ...v, [ev.type]: ev.verdict }));
          else if (ev.type === 'error') setErr(ev.error.message);
        }
      }
    } catch (x) {
      if ((x as Error).name !== 'AbortError') setErr((x as Error).message);
    } finally {
      setBusy(null);
    }
  };
  const V = ({ k, v }: { k: MessageKey; v?: Verdict }) => v ? <p class={`verdict ${v.action}`} data-testid={k}>{t(k)}: {v.action}{v.labels.length ? ` (${v.labels.join(', ')})` : ''}</p> : null;
  return (
    <section>
      <h2>{t('playground.heading')}</h2>
      <Status s={models}>{(d) => d.models.length === 0 ? <p>{t('playground.noModels')}</p> : (
        <form onSubmit={send}>
          <Picker id="model" label={t('playground.model')} items={d.models.map((m) => m.id)} value={cur} onChange={setModel} />
          <label for="maxt">{t('playground.maxTokens')}</label>
          <input id="maxt" type="number" min={1} max={512} value={maxTokens} onInput={(e) => setMax(Number((e.target as HTMLInputElement).value))} />
          <label for="msg">{t('playground.message')}</label>
          <textarea id="msg" rows={3} cols={60} value={msg} onInput={(e) => setMsg((e.target as HTMLTextAreaElement).value)} />
          <div>
            <button type="submit" disabled={busy !== null || !msg.trim()}>{t('playground.send')}</button>{' '}
            <button type="button" disabled={busy === null} onClick={() => busy?.abort()}>{t('playground.stop')}</button>
          </div>
        </form>
      )}</Status>
      {err && <p class="error" role="alert">{err}</p>}
      <V k="playground.guardInput" v={verdicts.input} />
      <h3>{t('playground.reply')}</h3>
      <div class="chat" data-testid="reply" aria-live="polite">{reply}</div>
      <V k="playground.guardOutput" v={verdicts.output} />
    </section>
  );
}

function Monitor() {
  const [url, setUrl] = useState(params.get('url') ?? '');
  const [tick, setTick] = useState(0);
  const s = useApi<{ samples: { name: string; labels: Record<string, string>; value: number }[] }>(`monitor${url ? `?url=${encodeURIComponent(url)}` : ''}`, [tick]);
  useEffect(() => { const id = setInterval(() => setTick((n) => n + 1), 2000); return () => clearInterval(id); }, []);
  const shown = (s.data?.samples ?? []).filter((x) => /requests_total|tokens_total|queue_depth|running_requests|_sum$|_count$|resident_memory/.test(x.name));
  return (
    <section>
      <h2>{t('monitor.heading')}</h2>
      <label for="url">{t('monitor.url')}</label>
      <input id="url" type="url" size={40} placeholder="http://127.0.0.1:8000" value={url} onChange={(e) => setUrl((e.target as HTMLInputElement).value)} />
      <p>{t('monitor.live')}</p>
      {s.error && <p class="error" role="alert">{s.error}</p>}
      {s.data && <table><thead><tr><th>{t('monitor.metric')}</th><th>{t('monitor.value')}</th></tr></thead>
        <tbody>{shown.map((x) => <tr><td>{x.name}{Object.keys(x.labels).length ? `{${Object.entries(x.labels).map(([k, v]) => `${k}="${v}"`).join(',')}}` : ''}</td><td>{fmt(x.value)}</td></tr>)}</tbody></table>}
    </section>
  );
}

function Lineage() {
  const s = useApi<{ edges: { from: string; to: string; relation: string }[] }>('lineage');
  return (
    <section>
      <h2>{t('lineage.heading')}</h2>
      <Status s={s}>{(d) => d.edges.length === 0 ? <p>{t('common.none')}</p> : (
        <table><thead><tr><th>{t('lineage.from')}</th><th>{t('lineage.relation')}</th><th>{t('lineage.to')}</th></tr></thead>
          <tbody>{d.edges.map((e) => <tr><td>{e.from}</td><td>{e.relation}</td><td>{e.to}</td></tr>)}</tbody></table>
      )}</Status>
    </section>
  );
}

const VIEWS: Record<Page, () => preact.JSX.Element> = { projects: Projects, datasets: Datasets, training: Training, evaluations: Evaluations, playground: Playground, monitor: Monitor, lineage: Lineage };
const View = VIEWS[page];
document.title = `${t(`nav.${page}` as MessageKey)} · ${t('app.title')}`;
render(<><Nav /><main id="main"><View /></main></>, document.getElementById('app')!);
