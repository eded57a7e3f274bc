// What every page shares: the language, the API client, loading/error states, pickers and uPlot charts.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { DICTIONARIES, type Lang, type MessageKey, parseLang, translate } from '../src/studio/i18n.ts';

export const PAGES = ['projects', 'datasets', 'training', 'evaluations', 'playground', 'monitor', 'lineage'] as const;
export type Page = (typeof PAGES)[number];

export const params = new URLSearchParams(location.search);
export const lang: Lang = parseLang(params.get('lang') ?? localStorage.getItem('loom.lang'));
localStorage.setItem('loom.lang', lang);
document.documentElement.lang = lang;
export const t = (k: MessageKey, v?: Record<string, string | number>) => translate(lang, k, v);
const seg = location.pathname.split('/').filter(Boolean).pop() ?? '';
export const page: Page = (PAGES as readonly string[]).includes(seg) ? (seg as Page) : 'projects';
export const href = (p: Page, l: Lang = lang, extra = '') => `${p}?lang=${l}${extra}`;

/** A status word from the server (running, finished, ran, skipped, …) in the page's language when it has one. */
export const word = (w: string | undefined): string =>
  w === undefined ? '' : `status.${w}` in DICTIONARIES[lang] ? translate(lang, `status.${w}` as MessageKey) : w;

export async function api<T>(path: string, body?: unknown): Promise<T> {
  const r = await fetch(`api/${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error?.hint ? `${j.error.message} (${j.error.hint})` : (j.error?.message ?? r.statusText));
  return j as T;
}

export function useApi<T>(path: string | null, deps: unknown[] = []): { data?: T; error?: string; reload: () => void } {
  const [state, set] = useState<{ data?: T; error?: string }>({});
  const [n, setN] = useState(0);
  useEffect(() => {
    if (!path) return;
    api<T>(path).then((data) => set({ data }), (e: Error) => set({ error: e.message }));
  }, [path, n, ...deps]);
  return { ...state, reload: () => setN(n + 1) };
}

export function Status<T>({ s, children }: { s: { data?: T; error?: string }; children: (d: T) => preact.ComponentChildren }) {
  if (s.error) return <p class="error" role="alert">{t('common.error')}: {s.error}</p>;
  if (!s.data) return <p>{t('common.loading')}</p>;
  return <>{children(s.data)}</>;
}

export function Picker({ id, label, items, value, onChange, labels }: { id: string; label: string; items: string[]; value: string; onChange: (v: string) => void; labels?: Record<string, string> }) {
  if (items.length === 0) return <p>{t('common.none')}</p>;
  return (
    <>
      <label for={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {items.map((i) => <option value={i}>{labels?.[i] ?? i}</option>)}
      </select>
    </>
  );
}

export const fmt = (n: number | undefined) => (n === undefined ? '–' : Math.abs(n) >= 10 ? n.toFixed(2) : n.toFixed(4));
export const shortHash = (h: string) => (h === 'missing' ? t('lineage.missing') : `sha256:${h.slice(0, 12)}`);

/** One uPlot line chart; `x` is steps or seconds since the epoch (`time`). Redrawn when the data change. */
export function Chart({ title, x, ys, time = false }: { title: string; x: number[]; ys: { label: string; values: (number | null)[] }[]; time?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const colours = ['#1f3a5f', '#c0392b', '#2e7d32'];
  useEffect(() => {
    if (!ref.current || x.length === 0) return;
    const u = new uPlot(
      { width: 340, height: 200, title, scales: { x: { time } }, series: [{ label: time ? t('monitor.time') : t('training.step') }, ...ys.map((y, i) => ({ label: y.label, stroke: colours[i % colours.length] }))] },
      [x, ...ys.map((y) => y.values)] as uPlot.AlignedData,
      ref.current,
    );
    return () => u.destroy();
  }, [x, ys]);
  return <figure aria-label={title} ref={ref} />;
}
