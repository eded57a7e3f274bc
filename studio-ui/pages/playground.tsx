// Playground: streamed chat with one model, or two side by side on the same message, each turn's guard verdicts
// (input before the model sees it, output after) shown inline in its pane.
import { useState } from 'preact/hooks';
import type { MessageKey } from '../../src/studio/i18n.ts';
import { Picker, Status, t, useApi } from '../lib.tsx';

interface Verdict { action: string; labels: string[] }
interface Pane { reply: string; input?: Verdict; output?: Verdict; error?: string; finish?: string }

/** One chat turn over the NDJSON stream of POST api/playground/chat; `on` gets the pane as it grows. */
async function stream(model: string, content: string, maxTokens: number, signal: AbortSignal, on: (p: Pane) => void): Promise<void> {
  const pane: Pane = { reply: '' };
  const r = await fetch('api/playground/chat', { method: 'POST', signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content }], max_tokens: maxTokens }) });
  if (!r.ok) throw new Error((await r.json()).error?.message ?? r.statusText);
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const ev = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (ev.type === 'delta') pane.reply += ev.text;
      else if (ev.type === 'input' || ev.type === 'output') pane[ev.type as 'input' | 'output'] = ev.verdict;
      else if (ev.type === 'error') pane.error = ev.error.message;
      else if (ev.type === 'done') pane.finish = ev.finish;
      on({ ...pane });
    }
  }
}

function V({ k, v, id }: { k: MessageKey; v?: Verdict; id: string }) {
  return v ? <p class={`verdict ${v.action}`} data-testid={id}>{t(k)}: {t(`guard.${v.action}` as MessageKey)}{v.labels.length ? ` (${v.labels.join(', ')})` : ''}</p> : null;
}

function PaneView({ title, p, suffix }: { title: string; p: Pane; suffix: string }) {
  return (
    <div class="pane" role="region" aria-label={title}>
      <h3>{title}</h3>
      <V k="playground.guardInput" v={p.input} id={`playground.guardInput${suffix}`} />
      <div class="chat" data-testid={`reply${suffix}`} aria-live="polite">{p.reply}</div>
      <V k="playground.guardOutput" v={p.output} id={`playground.guardOutput${suffix}`} />
      {p.error && <p class="error" role="alert">{p.error}</p>}
    </div>
  );
}

export function Playground() {
  const models = useApi<{ models: { id: string; label: string }[] }>('playground/models');
  const [model, setModel] = useState('');
  const [other, setOther] = useState('');
  const [msg, setMsg] = useState('');
  const [maxTokens, setMax] = useState(24);
  const [a, setA] = useState<Pane>({ reply: '' });
  const [b, setB] = useState<Pane>({ reply: '' });
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState<AbortController | null>(null);
  const cur = model || models.data?.models[0]?.id || '';
  const send = async (e: Event) => {
    e.preventDefault();
    setErr(''); setA({ reply: '' }); setB({ reply: '' });
    const ac = new AbortController();
    setBusy(ac);
    const one = (m: string, set: (p: Pane) => void) => stream(m, msg, maxTokens, ac.signal, set).catch((x: Error) => { if (x.name !== 'AbortError') setErr(x.message); });
    await Promise.all([one(cur, setA), ...(other ? [one(other, setB)] : [])]);
    setBusy(null);
  };
  const labels = Object.fromEntries((models.data?.models ?? []).map((m) => [m.id, m.label]));
  return (
    <section>
      <h2>{t('playground.heading')}</h2>
      <Status s={models}>{(d) => d.models.length === 0 ? <p>{t('playground.noModels')}</p> : (
        <form onSubmit={send}>
          <Picker id="model" label={t('playground.model')} items={d.models.map((m) => m.id)} labels={labels} value={cur} onChange={setModel} />
          <Picker id="model-b" label={t('playground.second')} items={['', ...d.models.map((m) => m.id)]} labels={{ ...labels, '': t('playground.none') }} value={other} onChange={setOther} />
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
      <div class="panes">
        <PaneView title={other ? `${t('playground.reply')} · ${labels[cur] ?? cur}` : t('playground.reply')} p={a} suffix="" />
        {other && <PaneView title={`${t('playground.reply')} · ${labels[other] ?? other}`} p={b} suffix="-b" />}
      </div>
    </section>
  );
}
