// Monitor: the server's /metrics read every 2 s (the mounted gateway's, or a loopback `loom serve`), drawn as live
// uPlot charts (request and token rates, queue and running, mean latency) with the latest values in a table.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type MonitorPoint, monitorPoint, type Sample, type Scrape } from '../../src/studio/series.ts';
import { api, Chart, fmt, params, t } from '../lib.tsx';

const KEEP = 150; // 5 minutes of points at one scrape every 2 s

export function Monitor() {
  const [url, setUrl] = useState(params.get('url') ?? '');
  const [samples, setSamples] = useState<Sample[] | null>(null);
  const [points, setPoints] = useState<MonitorPoint[]>([]);
  const [err, setErr] = useState('');
  const last = useRef<Scrape | null>(null);
  useEffect(() => {
    last.current = null;
    setPoints([]);
    let stop = false;
    const scrape = () =>
      api<{ samples: Sample[] }>(`monitor${url ? `?url=${encodeURIComponent(url)}` : ''}`).then(
        (r) => {
          if (stop) return;
          const cur = { at: Date.now(), samples: r.samples };
          const p = last.current && monitorPoint(last.current, cur);
          last.current = cur;
          setErr('');
          setSamples(r.samples);
          if (p) setPoints((ps) => [...ps.slice(-(KEEP - 1)), p]);
        },
        (e: Error) => !stop && setErr(e.message),
      );
    scrape();
    const id = setInterval(scrape, 2000);
    return () => { stop = true; clearInterval(id); };
  }, [url]);
  const charts = useMemo(() => {
    const x = points.map((p) => p.t);
    return [
      { title: t('monitor.rates'), ys: [{ label: t('monitor.rps'), values: points.map((p) => p.requestsPerSecond) }, { label: t('monitor.tps'), values: points.map((p) => p.tokensPerSecond) }] },
      { title: t('monitor.load'), ys: [{ label: t('monitor.queue'), values: points.map((p) => p.queue) }, { label: t('monitor.running'), values: points.map((p) => p.running) }] },
      { title: t('monitor.latency'), ys: [{ label: t('monitor.latency'), values: points.map((p) => p.meanLatency ?? null) }] },
    ].map((c) => ({ ...c, x }));
  }, [points]);
  const shown = (samples ?? []).filter((x) => /requests_total|tokens_total|queue_depth|running_requests|guard_verdicts|load_shed|_sum$|_count$|resident_memory/.test(x.name));
  return (
    <section>
      <h2>{t('monitor.heading')}</h2>
      <label for="url">{t('monitor.url')}</label>
      <input id="url" type="url" size={40} placeholder="http://127.0.0.1:8000" value={url} onChange={(e) => setUrl((e.target as HTMLInputElement).value)} />
      <p>{t('monitor.live')}</p>
      {err && <p class="error" role="alert">{err}</p>}
      {points.length === 0 ? <p>{t('monitor.waiting')}</p> : <div class="charts" data-testid="monitor-charts">{charts.map((c) => <Chart title={c.title} x={c.x} ys={c.ys} time />)}</div>}
      {samples && <table><thead><tr><th>{t('monitor.metric')}</th><th>{t('monitor.value')}</th></tr></thead>
        <tbody>{shown.map((x) => <tr><td>{x.name}{Object.keys(x.labels).length ? `{${Object.entries(x.labels).map(([k, v]) => `${k}="${v}"`).join(',')}}` : ''}</td><td>{fmt(x.value)}</td></tr>)}</tbody></table>}
    </section>
  );
}
