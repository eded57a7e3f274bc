// Training: a form (train YAML + overrides) that shows the resolved YAML and the measured pre-flight before launch,
// Start / Stop / Resume of one in-process job, and the run's loss, LR and grad-norm curves, live while it trains.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, Chart, Picker, Status, t, useApi, word } from '../lib.tsx';

interface Curve { step: number; split: string; loss?: number; lr?: number; grad_norm?: number }
interface Job { status: string; outputDir: string; run: string; runId?: string; steps?: number; lastLoss?: number; error?: string; log: string[] }

function Curves({ curves }: { curves: Curve[] }) {
  const charts = useMemo(() => {
    const tr = curves.filter((p) => p.split === 'train');
    const x = tr.map((p) => p.step);
    const one = (label: string, f: 'loss' | 'lr' | 'grad_norm') => ({ title: label, x, ys: [{ label, values: tr.map((p) => p[f] ?? null) }] });
    return [one(t('training.loss'), 'loss'), one(t('training.lr'), 'lr'), one(t('training.gradNorm'), 'grad_norm')];
  }, [curves]);
  if (charts[0]!.x.length === 0) return <p>{t('training.noCurves')}</p>;
  return <div class="charts">{charts.map((c) => <Chart title={c.title} x={c.x} ys={c.ys} />)}</div>;
}

export function Training() {
  const [tick, setTick] = useState(0);
  const runs = useApi<{ runs: string[]; configs: string[] }>('training/runs', [tick]);
  const job = useApi<{ job: Job | null }>('training/job', [tick]);
  const j = job.data?.job;
  const [sel, setSel] = useState('');
  // While a job runs the page follows its run folder, so the curves grow as the trainer logs them.
  const cur = sel || (j?.status === 'running' ? j.run : '') || runs.data?.runs[0] || '';
  const run = useApi<{ curves: Curve[] }>(cur && runs.data?.runs.includes(cur) ? `training/run?path=${encodeURIComponent(cur)}` : null, [tick]);
  useEffect(() => {
    if (j?.status !== 'running') return;
    const id = setTimeout(() => setTick(tick + 1), 1500);
    return () => clearTimeout(id);
  }, [job.data, tick]);
  const [cfg, setCfg] = useState('');
  const [ov, setOv] = useState('max_steps=4');
  const [preview, setPreview] = useState<{ yaml: string; preflight: Record<string, number> } | null>(null);
  const [err, setErr] = useState('');
  const config = cfg || runs.data?.configs[0] || '';
  const body = (resume = false) => ({ config, overrides: ov.split('\n').map((s) => s.trim()).filter(Boolean), resume });
  const act = (f: () => Promise<unknown>) => () => { setErr(''); f().then(() => setTick(tick + 1), (e: Error) => setErr(e.message)); };
  const running = j?.status === 'running';
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
          <button type="button" disabled={running} onClick={act(() => api('training/start', body()))}>{t('training.start')}</button>{' '}
          <button type="button" disabled={!running} onClick={act(() => api('training/stop', {}))}>{t('training.stop')}</button>{' '}
          <button type="button" disabled={running} onClick={act(() => api('training/start', body(true)))}>{t('training.resume')}</button>
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
      {j && (
        <div aria-live="polite">
          <p data-testid="job">{t('training.job')}: {word(j.status)} {j.runId ?? ''} {j.run} {j.lastLoss !== undefined ? `${t('training.lastLoss')} ${j.lastLoss.toFixed(4)}` : ''} {j.error ?? ''}</p>
          {j.log.length > 0 && <details><summary>{t('training.log')}</summary><pre>{j.log.slice(-30).join('\n')}</pre></details>}
        </div>
      )}
      <h3>{t('training.runs')}</h3>
      <Status s={runs}>{(d) => <Picker id="run" label={t('training.run')} items={d.runs} value={cur} onChange={setSel} />}</Status>
      {cur && <Status s={run}>{(r) => (
        <>
          <h4>{t('training.curves')}{running && cur === j?.run ? ` · ${t('training.live')}` : ''}</h4>
          <Curves curves={r.curves} />
        </>
      )}</Status>}
    </section>
  );
}
