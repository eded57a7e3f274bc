/**
 * Worker thread body for the parallel quality filter: receives `{ id, items: [text, allowEdit][] }`, answers
 * `{ id, results }` with one compact evaluation per text (see pool.ts). The resolved filter config arrives once,
 * as workerData.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { evaluateText } from './index.ts';
import type { QualityFilterConfig } from './presets.ts';

const cfg = workerData as QualityFilterConfig;

parentPort!.on('message', (m: { id: number; items: [string, boolean][] }) => {
  try {
    const results = m.items.map(([text, allowEdit]) => {
      const ev = evaluateText(text, cfg, allowEdit);
      // The edited text only travels back when C4 removed lines.
      return {
        drop: ev.drop,
        lang: ev.lang,
        linesRemoved: ev.linesRemoved,
        text: ev.linesRemoved ? ev.text : undefined,
      };
    });
    parentPort!.postMessage({ id: m.id, results });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).stack ?? String(e) });
  }
});
