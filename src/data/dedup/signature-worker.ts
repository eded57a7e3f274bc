/** Worker thread body for SignerPool: signs batches of texts and sends the typed arrays back (transferred). */
import { parentPort, workerData } from 'node:worker_threads';
import { makeBatchSigner, type SignParams } from './signature.ts';

const sign = makeBatchSigner(workerData as SignParams);
parentPort?.on('message', (msg: { id: number; texts: string[] }) => {
  const r = sign(msg.texts);
  parentPort?.postMessage({ id: msg.id, ...r }, [
    r.sigs.buffer as ArrayBuffer,
    r.keys.buffer as ArrayBuffer,
    r.shingles.buffer as ArrayBuffer,
  ]);
});
