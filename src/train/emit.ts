import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { TrainConfig } from '../config/train.ts';
import { writeFileAtomic, writeJsonAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { registryEntryFor } from '../data/formats/llamafactory.ts';
import { accelerateConfig, deepspeedConfig } from './emit-dist.ts';
import { axolotlTemplate, type EffectiveTemplate, effectiveTemplate, llamaFactoryTemplate } from './emit-template.ts';
import { loraOptions } from './options.ts';

/**
 * Scale-out hand-off: the same job written for an existing distributed trainer (LLaMA-Factory, Axolotl, TRL), with
 * data in its expected format, a DeepSpeed ZeRO or FSDP config when more than one GPU is asked, and the launch
 * command for N nodes x M GPUs. Every Loom setting that the target understands is carried over; the ones it does not
 * are listed in `warnings` instead of being dropped silently.
 */
export type EmitTarget = 'llamafactory' | 'axolotl' | 'trl';
export type Distributed = 'zero2' | 'zero3' | 'fsdp';

export interface EmitOptions {
  target: EmitTarget;
  outDir: string;
  nodes: number;
  gpus: number;
  /** Sharding for multi-GPU; default ZeRO-3 for full/freeze, ZeRO-2 for adapters. */
  distributed?: Distributed;
  /** Folder the config paths are relative to (dataset, model). */
  baseDir: string;
  /** HF model_type of the base model (informational: the chat template is chosen by rendering, emit-template.ts). */
  modelType?: string;
  /** Layer count of the base model (freeze tuning names layers explicitly). */
  numLayers?: number;
}

export interface EmitResult {
  files: string[];
  launch: string[];
  warnings: string[];
}

/**
 * The LoRA target list for each trainer, from one place: `all-linear` is LLaMA-Factory's `all`, Axolotl's
 * `lora_target_linear: true` and PEFT's `"all-linear"`; a module list is a comma string, a YAML list, a Python list.
 */
export function loraTargetKeys(c: TrainConfig, target: EmitTarget): Record<string, unknown> | string {
  const all = c.lora_target === 'all-linear';
  const mods: readonly string[] = c.lora_target === 'all-linear' ? [] : c.lora_target;
  if (target === 'llamafactory') return { lora_target: all ? 'all' : mods.join(',') };
  if (target === 'axolotl') return all ? { lora_target_linear: true } : { lora_target_modules: mods };
  return all ? '"all-linear"' : pyList(mods);
}

function multiGpu(o: Pick<EmitOptions, 'nodes' | 'gpus'>): boolean {
  return o.nodes * o.gpus > 1;
}

function chooseDistributed(c: TrainConfig, o: EmitOptions): Distributed {
  if (o.distributed) return o.distributed;
  return c.finetuning_type === 'full' || c.finetuning_type === 'freeze' ? 'zero3' : 'zero2';
}

function schedulerFor(c: TrainConfig): { name: string; kwargs?: Record<string, number> } {
  if (c.lr_scheduler_type === 'cosine' && c.min_lr > 0)
    return { name: 'cosine_with_min_lr', kwargs: { min_lr: c.min_lr } };
  if (c.lr_scheduler_type === 'constant')
    return { name: c.warmup_steps || c.warmup_ratio ? 'constant_with_warmup' : 'constant' };
  return { name: c.lr_scheduler_type };
}

function warmupKeys(c: TrainConfig): Record<string, number> {
  return c.warmup_steps > 0 ? { warmup_steps: c.warmup_steps } : { warmup_ratio: c.warmup_ratio };
}

/** AdamW, clipping and seed under the HF TrainingArguments names that LLaMA-Factory and Axolotl both read. */
function optimizerKeys(c: TrainConfig): Record<string, number> {
  return {
    weight_decay: c.weight_decay,
    adam_beta1: c.adam_beta1,
    adam_beta2: c.adam_beta2,
    adam_epsilon: c.adam_epsilon,
    max_grad_norm: c.max_grad_norm,
    seed: c.seed,
  };
}

/** Copies the dataset files next to the job; Loom's messages JSONL is already the OpenAI/sharegpt-with-tags shape. */
function copyData(
  c: TrainConfig,
  o: EmitOptions,
  dataDir: string,
  files: string[],
): { train: string[]; evalFiles: string[] } {
  const copy = (p: string): string => {
    const src = resolve(o.baseDir, p);
    if (!existsSync(src)) throw new LoomError('INPUT_NOT_FOUND', `dataset not found: ${p}`, { field: 'dataset' });
    const name = basename(src);
    const dst = join(dataDir, name);
    writeFileAtomic(dst, readFileSync(src));
    files.push(dst);
    return name;
  };
  return { train: c.dataset.map(copy), evalFiles: (c.eval_dataset ?? []).map(copy) };
}

function hasLossWeights(c: TrainConfig, o: EmitOptions): boolean {
  for (const p of c.dataset) {
    const src = resolve(o.baseDir, p);
    if (existsSync(src) && readFileSync(src, 'utf8').includes('"loss_weight"')) return true;
  }
  return false;
}

function refuseUnsupported(c: TrainConfig, target: EmitTarget): void {
  if (c.stage === 'cls') {
    throw new LoomError('TRAIN_INVALID', `--emit ${target}: stage cls (sequence classification) is not emitted`, {
      field: 'stage',
      hint: 'train it with loom train; the model folder it writes loads in transformers as AutoModelForSequenceClassification',
    });
  }
  if (c.finetuning_type === 'prefix' && target !== 'trl') {
    throw new LoomError('TRAIN_INVALID', `${target} has no prefix tuning`, {
      field: 'finetuning_type',
      hint: 'emit with --emit trl (PEFT PrefixTuningConfig), or choose lora',
    });
  }
}

export function emitJob(c: TrainConfig, o: EmitOptions): EmitResult {
  refuseUnsupported(c, o.target);
  const warnings: string[] = [];
  if (c.stage === 'sft' && hasLossWeights(c, o)) {
    warnings.push('per-message loss_weight is not understood by the target; assistant turns are trained with weight 1');
  }
  if (c.batch_tokens) warnings.push('batch_tokens has no equivalent; per_device_train_batch_size is used');
  if (o.target === 'llamafactory') return emitLlamaFactory(c, o, warnings);
  if (o.target === 'axolotl') return emitAxolotl(c, o, warnings);
  return emitTrl(c, o, warnings);
}

function modelPath(c: TrainConfig, o: EmitOptions): string {
  return resolve(o.baseDir, c.model);
}

/** The chat template Loom trains this config with (emit-template.ts decides what each trainer gets). */
function templateOf(c: TrainConfig, o: EmitOptions): EffectiveTemplate {
  return effectiveTemplate(c.template, modelPath(c, o));
}

function writeTemplateFile(o: EmitOptions, source: string): string {
  const f = join(o.outDir, 'chat_template.jinja');
  writeFileAtomic(f, source);
  return f;
}

function writeDistributed(c: TrainConfig, o: EmitOptions, files: string[]): { dist?: Distributed; dsFile?: string } {
  if (!multiGpu(o)) return {};
  const dist = chooseDistributed(c, o);
  if (dist === 'fsdp') return { dist };
  const dsFile = join(o.outDir, `ds_${dist === 'zero2' ? 'z2' : 'z3'}_config.json`);
  writeJsonAtomic(dsFile, deepspeedConfig(dist === 'zero2' ? 2 : 3));
  files.push(dsFile);
  return { dist, dsFile };
}

function torchrunArgs(o: EmitOptions): string {
  return o.nodes > 1
    ? `--nnodes ${o.nodes} --nproc_per_node ${o.gpus} --node_rank $NODE_RANK --rdzv_backend c10d --rdzv_endpoint $MASTER_ADDR:29500`
    : `--nproc_per_node ${o.gpus}`;
}

function emitLlamaFactory(c: TrainConfig, o: EmitOptions, warnings: string[]): EmitResult {
  const files: string[] = [];
  const dataDir = join(o.outDir, 'data');
  const data = copyData(c, o, dataDir, files);
  const info: Record<string, unknown> = {};
  const entry = (file: string) => registryEntryFor(file, c.stage === 'pt' ? 'text' : 'messages');
  const names = data.train.map((f) => f.replace(/\.[^.]+$/, ''));
  data.train.forEach((f, i) => {
    info[names[i]!] = entry(f);
  });
  const evalNames = data.evalFiles.map((f) => `${f.replace(/\.[^.]+$/, '')}_eval`);
  data.evalFiles.forEach((f, i) => {
    info[evalNames[i]!] = entry(f);
  });
  const infoFile = join(dataDir, 'dataset_info.json');
  writeJsonAtomic(infoFile, info);
  files.push(infoFile);

  const { dist, dsFile } = writeDistributed(c, o, files);
  const sched = schedulerFor(c);
  const tpl = llamaFactoryTemplate(templateOf(c, o));
  warnings.push(...tpl.warnings);
  if (tpl.source !== undefined) files.push(writeTemplateFile(o, tpl.source));
  const method: Record<string, unknown> = {
    finetuning_type: c.finetuning_type === 'qlora' ? 'lora' : c.finetuning_type,
  };
  if (c.finetuning_type === 'lora' || c.finetuning_type === 'qlora') {
    const lo = loraOptions(c);
    Object.assign(method, {
      lora_rank: lo.rank,
      lora_alpha: lo.alpha,
      lora_dropout: lo.dropout,
      ...(loraTargetKeys(c, 'llamafactory') as Record<string, unknown>),
      use_rslora: lo.useRslora,
    });
  }
  if (c.finetuning_type === 'qlora') Object.assign(method, { quantization_bit: 4, quantization_method: 'bnb' });
  if (c.finetuning_type === 'freeze') {
    Object.assign(method, {
      freeze_trainable_layers: c.freeze_trainable_layers,
      freeze_trainable_modules: c.freeze_trainable_modules.join(','),
    });
  }
  const yaml: Record<string, unknown> = {
    model_name_or_path: modelPath(c, o),
    stage: c.stage,
    do_train: true,
    ...method,
    dataset: names.join(','),
    ...(evalNames.length ? { eval_dataset: evalNames.join(',') } : {}),
    dataset_dir: 'data',
    ...(tpl.name ? { template: tpl.name } : {}),
    cutoff_len: c.cutoff_len,
    packing: c.packing,
    train_on_prompt: c.train_on_prompt,
    ...(c.max_samples ? { max_samples: c.max_samples } : {}),
    ...(c.val_size > 0 ? { val_size: c.val_size } : {}),
    output_dir: 'saves/loom-job',
    logging_steps: c.logging_steps,
    ...(c.save_steps ? { save_steps: c.save_steps } : {}),
    save_total_limit: c.save_total_limit,
    plot_loss: true,
    overwrite_output_dir: true,
    report_to: 'none',
    per_device_train_batch_size: c.per_device_train_batch_size,
    gradient_accumulation_steps: c.gradient_accumulation_steps,
    learning_rate: c.learning_rate,
    num_train_epochs: c.num_train_epochs,
    ...(c.max_steps ? { max_steps: c.max_steps } : {}),
    lr_scheduler_type: sched.name,
    ...(sched.kwargs ? { lr_scheduler_kwargs: sched.kwargs } : {}),
    ...warmupKeys(c),
    ...optimizerKeys(c),
    bf16: true,
    ...(c.eval_steps ? { eval_strategy: 'steps', eval_steps: c.eval_steps, per_device_eval_batch_size: 1 } : {}),
    ...(c.early_stopping_patience ? { early_stopping_steps: c.early_stopping_patience } : {}),
    ...(dsFile ? { deepspeed: basename(dsFile) } : {}),
  };
  if (dist === 'fsdp') warnings.push('LLaMA-Factory runs FSDP through accelerate: use the accelerate launch line');
  const cfgFile = join(o.outDir, 'train.yaml');
  writeFileAtomic(cfgFile, `# written by loom train --emit llamafactory\n${toYaml(yaml)}`);
  files.push(cfgFile);
  let accFile: string | undefined;
  if (dist === 'fsdp') {
    accFile = join(o.outDir, 'accelerate_fsdp.yaml');
    writeFileAtomic(accFile, toYaml(accelerateConfig(o, dist)));
    files.push(accFile);
  }
  const launch = !multiGpu(o)
    ? ['llamafactory-cli train train.yaml']
    : accFile
      ? [
          `accelerate launch --config_file accelerate_fsdp.yaml --num_machines ${o.nodes} --num_processes ${o.nodes * o.gpus}${o.nodes > 1 ? ' --machine_rank $NODE_RANK --main_process_ip $MASTER_ADDR --main_process_port 29500' : ''} -m llamafactory.launcher train.yaml`,
        ]
      : [
          `FORCE_TORCHRUN=1 NNODES=${o.nodes} NPROC_PER_NODE=${o.gpus}${o.nodes > 1 ? ' NODE_RANK=$NODE_RANK MASTER_ADDR=$MASTER_ADDR MASTER_PORT=29500' : ''} llamafactory-cli train train.yaml`,
          `torchrun ${torchrunArgs(o)} -m llamafactory.launcher train.yaml`,
        ];
  return finish(o, files, launch, warnings);
}

function emitAxolotl(c: TrainConfig, o: EmitOptions, warnings: string[]): EmitResult {
  const files: string[] = [];
  const data = copyData(c, o, join(o.outDir, 'data'), files);
  const ds = (f: string): Record<string, unknown> =>
    c.stage === 'pt'
      ? { path: `data/${f}`, ds_type: 'json', type: 'completion', field: 'text' }
      : {
          path: `data/${f}`,
          ds_type: 'json',
          type: 'chat_template',
          field_messages: 'messages',
          message_property_mappings: { role: 'role', content: 'content' },
          roles_to_train: c.train_on_prompt ? ['system', 'user', 'assistant'] : ['assistant'],
        };
  const { dist, dsFile } = writeDistributed(c, o, files);
  const tpl = axolotlTemplate(templateOf(c, o));
  warnings.push(...tpl.warnings);
  const sched =
    c.lr_scheduler_type === 'linear' ? 'linear' : c.lr_scheduler_type === 'constant' ? 'constant' : 'cosine';
  const adapter: Record<string, unknown> = {};
  if (c.finetuning_type === 'lora' || c.finetuning_type === 'qlora') {
    const lo = loraOptions(c);
    Object.assign(adapter, {
      adapter: c.finetuning_type,
      ...(c.finetuning_type === 'qlora' ? { load_in_4bit: true } : {}),
      lora_r: lo.rank,
      lora_alpha: lo.alpha,
      lora_dropout: lo.dropout,
      ...(loraTargetKeys(c, 'axolotl') as Record<string, unknown>),
      peft_use_rslora: lo.useRslora,
    });
  }
  if (c.finetuning_type === 'freeze') {
    adapter.unfrozen_parameters = freezePatterns(c, layersOf(o));
  }
  const yaml: Record<string, unknown> = {
    base_model: modelPath(c, o),
    chat_template: tpl.name,
    ...(tpl.source !== undefined ? { chat_template_jinja: tpl.source } : {}),
    datasets: data.train.map(ds),
    ...(data.evalFiles.length ? { test_datasets: data.evalFiles.map(ds) } : { val_set_size: c.val_size }),
    dataset_prepared_path: 'last_run_prepared',
    output_dir: './outputs/loom-job',
    sequence_len: c.cutoff_len,
    sample_packing: c.packing,
    pad_to_sequence_len: c.packing,
    train_on_inputs: c.train_on_prompt,
    ...adapter,
    micro_batch_size: c.per_device_train_batch_size,
    gradient_accumulation_steps: c.gradient_accumulation_steps,
    num_epochs: c.num_train_epochs,
    ...(c.max_steps ? { max_steps: c.max_steps } : {}),
    optimizer: 'adamw_torch',
    learning_rate: c.learning_rate,
    lr_scheduler: sched,
    ...(c.min_lr > 0 && sched === 'cosine' ? { cosine_min_lr_ratio: c.min_lr / c.learning_rate } : {}),
    ...warmupKeys(c),
    ...optimizerKeys(c),
    bf16: 'auto',
    logging_steps: c.logging_steps,
    ...(c.eval_steps ? { eval_steps: c.eval_steps } : {}),
    ...(c.save_steps ? { save_steps: c.save_steps } : {}),
    save_total_limit: c.save_total_limit,
    ...(c.early_stopping_patience ? { early_stopping_patience: c.early_stopping_patience } : {}),
    ...(dsFile ? { deepspeed: basename(dsFile) } : {}),
    ...(dist === 'fsdp'
      ? {
          fsdp_version: 2,
          fsdp_config: {
            offload_params: false,
            state_dict_type: 'SHARDED_STATE_DICT',
            auto_wrap_policy: 'TRANSFORMER_BASED_WRAP',
            reshard_after_forward: true,
          },
        }
      : {}),
  };
  const cfgFile = join(o.outDir, 'axolotl.yaml');
  writeFileAtomic(cfgFile, `# written by loom train --emit axolotl\n${toYaml(yaml)}`);
  files.push(cfgFile);
  const launch = multiGpu(o)
    ? [
        `axolotl train axolotl.yaml --launcher torchrun -- ${torchrunArgs(o)}`,
        ...(dsFile
          ? [
              `deepspeed --num_nodes ${o.nodes} --num_gpus ${o.gpus}${o.nodes > 1 ? ' --hostfile hostfile' : ''} -m axolotl.cli.train axolotl.yaml`,
            ]
          : []),
      ]
    : ['axolotl train axolotl.yaml'];
  return finish(o, files, launch, warnings);
}

/** Freeze tuning as regexes over HF parameter names (last N layers, or first N when negative; optionally some modules). */
function freezePatterns(c: TrainConfig, numLayers: number): string[] {
  const n = c.freeze_trainable_layers;
  const idx =
    n > 0
      ? Array.from({ length: Math.min(n, numLayers) }, (_, i) => numLayers - Math.min(n, numLayers) + i)
      : Array.from({ length: Math.min(-n, numLayers) }, (_, i) => i);
  const mods = c.freeze_trainable_modules.includes('all') ? '.*' : `.*(${c.freeze_trainable_modules.join('|')}).*`;
  return [`model\\.layers\\.(${idx.join('|')})\\.${mods}`];
}

function layersOf(o: EmitOptions): number {
  if (o.numLayers === undefined) {
    throw new LoomError(
      'TRAIN_INVALID',
      'freeze tuning needs the base model config.json to name the trainable layers',
      {
        field: 'model',
      },
    );
  }
  return o.numLayers;
}

function pyStr(s: string): string {
  return JSON.stringify(s);
}

function pyList(xs: readonly string[]): string {
  return `[${xs.map(pyStr).join(', ')}]`;
}

function emitTrl(c: TrainConfig, o: EmitOptions, warnings: string[]): EmitResult {
  const files: string[] = [];
  const data = copyData(c, o, join(o.outDir, 'data'), files);
  const { dist, dsFile } = writeDistributed(c, o, files);
  const sched = schedulerFor(c);
  const lo = loraOptions(c);
  const peft =
    c.finetuning_type === 'lora' || c.finetuning_type === 'qlora'
      ? `LoraConfig(r=${lo.rank}, lora_alpha=${lo.alpha}, lora_dropout=${lo.dropout}, ` +
        `target_modules=${loraTargetKeys(c, 'trl') as string}, ` +
        `use_rslora=${lo.useRslora ? 'True' : 'False'}, bias="none", task_type="CAUSAL_LM")`
      : c.finetuning_type === 'prefix'
        ? `PrefixTuningConfig(num_virtual_tokens=${c.num_virtual_tokens}, prefix_projection=False, task_type="CAUSAL_LM")`
        : 'None';
  const quant =
    c.finetuning_type === 'qlora'
      ? `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)`
      : 'None';
  const freeze =
    c.finetuning_type === 'freeze'
      ? `
    trainable = [re.compile(p) for p in ${pyList(freezePatterns(c, layersOf(o)))}]
    for name, p in model.named_parameters():
        p.requires_grad = any(t.fullmatch(name) for t in trainable)
`
      : '';
  const warmup = c.warmup_steps > 0 ? `warmup_steps=${c.warmup_steps}` : `warmup_ratio=${c.warmup_ratio}`;
  const args = [
    `output_dir="outputs/loom-job"`,
    `per_device_train_batch_size=${c.per_device_train_batch_size}`,
    `gradient_accumulation_steps=${c.gradient_accumulation_steps}`,
    `learning_rate=${c.learning_rate}`,
    `num_train_epochs=${c.num_train_epochs}`,
    ...(c.max_steps ? [`max_steps=${c.max_steps}`] : []),
    `lr_scheduler_type=${pyStr(sched.name)}`,
    ...(sched.kwargs ? [`lr_scheduler_kwargs=${JSON.stringify(sched.kwargs)}`] : []),
    warmup,
    `weight_decay=${c.weight_decay}`,
    `adam_beta1=${c.adam_beta1}`,
    `adam_beta2=${c.adam_beta2}`,
    `adam_epsilon=${c.adam_epsilon}`,
    `max_grad_norm=${c.max_grad_norm}`,
    `seed=${c.seed}`,
    `max_length=${c.cutoff_len}`,
    `packing=${c.packing ? 'True' : 'False'}`,
    ...(c.stage === 'sft' ? [`assistant_only_loss=${c.train_on_prompt ? 'False' : 'True'}`] : []),
    ...(c.stage === 'pt' ? [`dataset_text_field="text"`] : []),
    `logging_steps=${c.logging_steps}`,
    ...(c.save_steps ? [`save_steps=${c.save_steps}`, `save_strategy="steps"`] : []),
    `save_total_limit=${c.save_total_limit}`,
    ...(c.eval_steps && data.evalFiles.length ? [`eval_strategy="steps"`, `eval_steps=${c.eval_steps}`] : []),
    ...(c.early_stopping_patience && data.evalFiles.length
      ? [`load_best_model_at_end=True`, `metric_for_best_model="eval_loss"`]
      : []),
    `bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported()`,
    `report_to="none"`,
    ...(dsFile ? [`deepspeed=${pyStr(basename(dsFile))}`] : []),
  ];
  // TRL renders with tokenizer.chat_template: set it when Loom trains with another template than the tokenizer's.
  const eff = templateOf(c, o);
  const setTemplate = eff.origin !== 'model' && eff.source !== undefined;
  if (setTemplate) {
    warnings.push(
      `template: the script sets tokenizer.chat_template to the ${eff.origin === 'builtin' ? `Loom built-in "${eff.name}"` : 'Jinja template from the config'} (the tokenizer's own is not what Loom trains with)`,
    );
  } else if (eff.origin === 'name') {
    warnings.push(
      `template "${eff.name}" is not a Loom template; the TRL script uses the tokenizer's own chat template`,
    );
  }
  const script = `#!/usr/bin/env python3
# Written by \`loom train --emit trl\`: the same job for TRL's SFTTrainer (+ PEFT).
# Loom settings: stage=${c.stage} finetuning_type=${c.finetuning_type} template=${c.template} cutoff_len=${c.cutoff_len}
import re  # noqa: F401  (used by freeze tuning)

import torch
from datasets import load_dataset
from peft import LoraConfig, PrefixTuningConfig  # noqa: F401
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, EarlyStoppingCallback  # noqa: F401
from trl import SFTConfig, SFTTrainer

MODEL = ${pyStr(modelPath(c, o))}
TRAIN_FILES = ${pyList(data.train.map((f) => `data/${f}`))}
EVAL_FILES = ${pyList(data.evalFiles.map((f) => `data/${f}`))}


def main():
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
${setTemplate ? `    tokenizer.chat_template = ${pyStr(eff.source!)}\n` : ''}    model = AutoModelForCausalLM.from_pretrained(MODEL, quantization_config=${quant})
${freeze}
    train = load_dataset("json", data_files=TRAIN_FILES, split="train")
    evaluation = load_dataset("json", data_files=EVAL_FILES, split="train") if EVAL_FILES else None
    args = SFTConfig(
        ${args.join(',\n        ')},
    )
    callbacks = ${c.early_stopping_patience && data.evalFiles.length ? `[EarlyStoppingCallback(early_stopping_patience=${c.early_stopping_patience})]` : '[]'}
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        peft_config=${peft},
        callbacks=callbacks,
    )
    trainer.train()
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
`;
  const scriptFile = join(o.outDir, 'train_trl.py');
  writeFileAtomic(scriptFile, script);
  files.push(scriptFile);
  const launch: string[] = [];
  if (!multiGpu(o)) launch.push('python3 train_trl.py');
  else {
    const accFile = join(o.outDir, 'accelerate.yaml');
    writeFileAtomic(accFile, toYaml(accelerateConfig(o, dist!, dsFile ? basename(dsFile) : undefined)));
    files.push(accFile);
    launch.push(
      `accelerate launch --config_file accelerate.yaml --num_machines ${o.nodes} --num_processes ${o.nodes * o.gpus}${o.nodes > 1 ? ' --machine_rank $NODE_RANK --main_process_ip $MASTER_ADDR --main_process_port 29500' : ''} train_trl.py`,
      `torchrun ${torchrunArgs(o)} train_trl.py`,
    );
    if (dsFile) {
      launch.push(
        `deepspeed --num_nodes ${o.nodes} --num_gpus ${o.gpus}${o.nodes > 1 ? ' --hostfile hostfile' : ''} train_trl.py`,
      );
    }
  }
  return finish(o, files, launch, warnings);
}

function finish(o: EmitOptions, files: string[], launch: string[], warnings: string[]): EmitResult {
  const sh = join(o.outDir, 'launch.sh');
  const body = [
    '#!/usr/bin/env bash',
    `# ${o.nodes} node(s) x ${o.gpus} GPU(s). Multi-node: set NODE_RANK and MASTER_ADDR on every node.`,
    'set -euo pipefail',
    'cd "$(dirname "$0")"',
    launch[0]!,
    ...launch.slice(1).map((l) => `# or: ${l}`),
    '',
  ].join('\n');
  writeFileAtomic(sh, body);
  files.push(sh);
  return { files, launch, warnings };
}
