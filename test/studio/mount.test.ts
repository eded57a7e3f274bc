import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildGateway } from '../../src/serve/app.ts';
import { ChatModelBackend } from '../../src/serve/backends.ts';
import { listenGateway } from '../../src/serve/openai-server.ts';
import { mountStudio } from '../../src/studio/app.ts';
import { echo } from './fixture.ts';

test('serve --studio: the Studio under /studio uses the gateway models and metrics; the gateway routes still work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-studio-mount-'));
  const gw = buildGateway({ models: [new ChatModelBackend('echo', echo)] });
  const unmount = mountStudio(gw.app, { projectDir: dir, gateway: gw, registry: join(dir, 'r.db') }, '/studio');
  const url = await listenGateway(gw, '127.0.0.1', 0);
  try {
    const bare = await fetch(`${url}/studio`, { redirect: 'manual' });
    assert.equal(bare.status, 302);
    assert.equal(bare.headers.get('location'), '/studio/');
    const page = await (await fetch(`${url}/studio/datasets?lang=zh-CN`)).text();
    assert.match(page, /<base href="\/studio\/" \/>/);
    const models = (await (await fetch(`${url}/studio/api/playground/models`)).json()) as { models: { id: string }[] };
    assert.deepEqual(
      models.models.map((m) => m.id),
      ['serve:echo'],
    );
    const r = await fetch(`${url}/studio/api/playground/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'serve:echo', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const events = (await r.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; text?: string });
    assert.equal(
      events
        .filter((e) => e.type === 'delta')
        .map((e) => e.text)
        .join(''),
      'echo: hi',
    );
    const mon = (await (await fetch(`${url}/studio/api/monitor`)).json()) as {
      samples: { name: string; labels: Record<string, string> }[];
    };
    assert.ok(mon.samples.some((s) => s.name === 'loom_queue_depth' && s.labels.model === 'echo'));
    assert.equal((await fetch(`${url}/health`)).status, 200);
    const miss = await fetch(`${url}/studio/api/nothing`);
    assert.equal(miss.status, 404);
    assert.ok(((await miss.json()) as { error?: unknown }).error);
  } finally {
    await gw.app.close();
    await unmount();
    rmSync(dir, { recursive: true, force: true });
  }
});
