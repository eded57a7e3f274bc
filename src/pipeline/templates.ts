/**
 * The `loom init` templates: each is a set of files (text, or a copy of a file shipped in examples/) that makes a
 * project which runs as it is: `cd DIR && loom run pipeline.yaml`. Every template builds its tiny base model from
 * nothing (no network), LoRA-tunes it, evaluates base vs LoRA, exports the merged model and smoke-serves it.
 * Shared skeleton below; each template contributes its sample data, data.yaml and prompts.
 */
export const TEMPLATES = ['customer-service', 'faq-qa', 'summarization', 'classification'] as const;
export type TemplateName = (typeof TEMPLATES)[number];

export type TemplateFile = { text: string } | { copy: string };

export interface TemplateOptions {
  /** Prompt-only project: no train/export stages; a prompt template with few-shot examples instead. */
  noTrain?: boolean;
}

interface Spec {
  title: string;
  system: string;
  /** data.yaml inputs + output tail, data files. */
  data: { inputs: string; filters: string; files: Record<string, TemplateFile> };
  metrics: string;
  smoke: string;
  /** Few-shot examples for prompts/*.yaml (prompt-only path and the eval's prompt variant). */
  shots: [string, string][];
}

const EX = 'examples/customer-service/raw';

const SUMMARIES_SOURCE = `# SOURCE — customer messages with one-sentence summaries (written for Loom)

Written for this template (licence: the project's, Apache-2.0). All shops, orders and people are fictional.
`;

const CS_SYSTEM =
  '你是露米商城（Lumi Store）的客服助手。请用顾客使用的语言（中文或英文），简洁、礼貌地回答关于订单、物流、退换货、退款、支付、发票、账号和优惠券的问题。';

const FAQ_FILES: Record<string, TemplateFile> = {
  'data/faq/faq_en.jsonl': { copy: `${EX}/faq/faq_en.jsonl` },
  'data/faq/faq_zh_export.csv': { copy: `${EX}/faq/faq_zh_export.csv` },
  'data/faq/SOURCE.md': { copy: `${EX}/faq/SOURCE.md` },
};

const SPECS: Record<TemplateName, Spec> = {
  'customer-service': {
    title: 'Lumi Store customer service (bilingual chats)',
    system: CS_SYSTEM,
    data: {
      inputs: `  - { name: faq_zh, path: data/faq/faq_zh_export.csv, formatting: alpaca, columns: { prompt: 问题, response: 答案 } }
  - { name: faq_en, path: data/faq/faq_en.jsonl, formatting: alpaca }
  - { name: helpcenter, path: data/faq/helpcenter_export.json, formatting: openai }
  - { name: chats, path: data/chats/*.jsonl, formatting: sharegpt }`,
      filters: `normalize: { t2s: t }
filters: { preset: chat, lang: { allowed: [zh, en] }, length: { min_chars: 20 } }
pii: { action: mask }
dedup: { exact: { lowercase: true, ignore_punctuation: true } }`,
      files: {
        ...FAQ_FILES,
        'data/faq/helpcenter_export.json': { copy: `${EX}/faq/helpcenter_export.json` },
        'data/chats/chat_logs.jsonl': { copy: `${EX}/chats/chat_logs.jsonl` },
        'data/chats/SOURCE.md': { copy: `${EX}/chats/SOURCE.md` },
      },
    },
    metrics: '[chrf, rouge]',
    smoke: 'How do I reset my password?',
    shots: [
      ['How do I track my order?', 'Open the order under "My Orders" and tap "Track Package" to see live tracking.'],
      ['怎么申请退货？', '在“我的订单”中找到该订单，点击“申请退货”，按提示填写原因并提交即可。'],
    ],
  },
  'faq-qa': {
    title: 'Lumi Store FAQ question answering',
    system: 'Answer the Lumi Store customer question in one or two sentences, in the language of the question.',
    data: {
      inputs: `  - { name: faq_zh, path: data/faq/faq_zh_export.csv, formatting: alpaca, columns: { prompt: 问题, response: 答案 } }
  - { name: faq_en, path: data/faq/faq_en.jsonl, formatting: alpaca }`,
      filters: `filters: { preset: chat, length: { min_chars: 10 } }
pii: { action: mask }
dedup: { exact: { lowercase: true, ignore_punctuation: true } }`,
      files: FAQ_FILES,
    },
    metrics: '[chrf, rouge, f1]',
    smoke: 'Where is my order?',
    shots: [
      ['Where is my order?', 'Open the order under "My Orders" and tap "Track Package" to see live tracking.'],
      ['发票怎么开？', '在订单详情页点击“申请发票”，填写抬头和税号后提交。'],
    ],
  },
  summarization: {
    title: 'One-sentence summaries of customer messages',
    system: 'Summarise the customer message in one short sentence.',
    data: {
      inputs: '  - { name: messages, path: data/summaries.jsonl, formatting: alpaca }',
      filters: 'dedup: { exact: { lowercase: true } }',
      files: { 'data/summaries.jsonl': { text: summariesJsonl() }, 'data/SOURCE.md': { text: SUMMARIES_SOURCE } },
    },
    metrics: '[rouge, chrf]',
    smoke: 'Summarise: my parcel arrived with a broken lid and I would like a replacement please.',
    shots: [
      [
        'I ordered a blue kettle last week but a red one arrived. Can you swap it?',
        'Wrong colour kettle delivered; customer wants an exchange.',
      ],
    ],
  },
  classification: {
    title: 'Banking intent classification (BANKING77 sample)',
    system: 'Classify the banking customer query. Reply with the intent label only.',
    data: {
      inputs:
        '  - { name: banking77, path: data/banking77_sample.csv, formatting: alpaca, columns: { prompt: text, response: category } }',
      filters: 'dedup: { exact: { lowercase: true, ignore_punctuation: true } }',
      files: {
        'data/banking77_sample.csv': { copy: `${EX}/banking77/banking77_sample.csv` },
        'data/SOURCE.md': { copy: `${EX}/banking77/SOURCE.md` },
        'data/LICENSE': { copy: `${EX}/banking77/LICENSE` },
      },
    },
    metrics: '[em, chrf]',
    smoke: 'My card payment was declined, why?',
    shots: [
      ['Why was there a fee on my card payment?', 'card_payment_fee_charged'],
      ['I still have not received my refund.', 'Refund_not_showing_up'],
    ],
  },
};

/** Hand-written pairs: long enough to need a summary, short enough for a tiny model's 256-token window. */
function summariesJsonl(): string {
  const pairs: [string, string][] = [
    [
      'My order 1043 was supposed to arrive on Monday. It is Thursday and tracking has not moved since the warehouse scan. Can you check what happened?',
      'Order 1043 is late and tracking stopped at the warehouse.',
    ],
    [
      'I bought a pair of running shoes, size 42, but they are too small. I would like to exchange them for size 43 if you have it in stock.',
      'Customer wants to exchange size 42 shoes for size 43.',
    ],
    [
      'The coupon code SPRING10 says it is invalid at checkout even though the email said it is valid until the end of the month.',
      'Coupon SPRING10 is rejected at checkout before its expiry date.',
    ],
    [
      'I was charged twice for the same order this morning. Please refund one of the payments as soon as possible.',
      'Customer was charged twice and wants one payment refunded.',
    ],
    [
      'Can I change the delivery address on my order? I am moving next week and the parcel has not shipped yet.',
      'Customer wants to change the delivery address before shipping.',
    ],
    [
      'The headphones I received only play sound in the left ear. I have tried two different phones and the problem is the same.',
      'Headphones are faulty: only the left ear works.',
    ],
    [
      'I need a company invoice for my last order with our tax number on it. The one in the app only shows my name.',
      'Customer needs a company invoice with the tax number.',
    ],
    [
      'I forgot my password and the reset email never arrives, I checked the spam folder as well.',
      'Password reset email does not arrive.',
    ],
    [
      'Your courier left my parcel outside in the rain and the box and the book inside are soaked.',
      'Parcel left in the rain; the book arrived damaged.',
    ],
    [
      'I returned a jacket two weeks ago and the tracking shows you received it, but I still have no refund.',
      'Returned jacket was received but the refund is missing.',
    ],
    [
      'Is it possible to pay for my order in three instalments? I could not find the option at checkout.',
      'Customer asks about paying in three instalments.',
    ],
    [
      'The blender I ordered arrived without the lid. Everything else is in the box.',
      'Blender delivered without its lid.',
    ],
    [
      'I would like to cancel my order placed an hour ago, I ordered the wrong model by mistake.',
      'Customer wants to cancel an order placed by mistake.',
    ],
    [
      'My account was locked after I typed the wrong password a few times. How can I unlock it?',
      'Customer account is locked after failed logins.',
    ],
    [
      'The price dropped two days after I bought the vacuum cleaner. Can you refund the difference?',
      'Customer asks for a refund of a price drop.',
    ],
    [
      'I received somebody else’s order, a box of cat food, instead of my phone case.',
      'Wrong parcel delivered: cat food instead of a phone case.',
    ],
    [
      'I want to unsubscribe from your marketing emails but the link at the bottom does not work.',
      'Unsubscribe link in marketing emails is broken.',
    ],
    [
      'Can you deliver to a parcel locker instead of my home address? I am at work during the day.',
      'Customer asks for delivery to a parcel locker.',
    ],
    [
      'My gift card shows a balance of zero, but I have never used it. It was a birthday present.',
      'Unused gift card shows a zero balance.',
    ],
    [
      'The size chart says medium fits chest 96 cm, but the medium shirt I received is much smaller.',
      'Medium shirt is smaller than the size chart says.',
    ],
    [
      'I ordered three items but only two arrived, and the packing slip lists all three.',
      'One of three ordered items is missing.',
    ],
    ['The app crashes every time I open my order history on my phone.', 'App crashes when opening the order history.'],
    [
      'Please tell me whether the desk lamp comes with a bulb, the product page does not say.',
      'Customer asks whether the desk lamp includes a bulb.',
    ],
    [
      'I paid for express shipping but the order took a week, so I would like the shipping fee back.',
      'Express shipping was slow; customer wants the fee refunded.',
    ],
    [
      'The watch strap broke after three days of normal use. Is this covered by the warranty?',
      'Watch strap broke in three days; customer asks about the warranty.',
    ],
    [
      'I cannot add my new credit card to my account, the form says the card number is invalid.',
      'New credit card is rejected as invalid.',
    ],
    [
      'The delivery driver asked me to pay cash on delivery although I already paid online.',
      'Driver asked for cash although the order was paid online.',
    ],
    [
      'I would like to know when the grey sofa will be back in stock, it has been sold out for a month.',
      'Customer asks when the grey sofa is back in stock.',
    ],
    [
      'My discount for students disappeared from my account after I updated my email address.',
      'Student discount vanished after an email change.',
    ],
    [
      'The phone I bought is locked to a carrier, but the listing said it was unlocked.',
      'Phone is carrier-locked though listed as unlocked.',
    ],
  ];
  return pairs.map(([i, o]) => JSON.stringify({ instruction: i, input: '', output: o })).join('\n') + '\n';
}

const q = (s: string): string => JSON.stringify(s);

export function templateFiles(name: TemplateName, opts: TemplateOptions = {}): Record<string, TemplateFile> {
  const s = SPECS[name];
  const files: Record<string, TemplateFile> = { ...s.data.files };
  files['data.yaml'] = {
    text: `# ${s.title}: raw sample data → clean chat splits (see docs/data.md). Paths are relative to this folder.
name: ${name}
out_dir: out/data
inputs:
${s.data.inputs}
${s.data.filters}
output:
  format: messages
  system_prompt: ${q(s.system)}
  system_mode: replace
split: { train: 0.8, validation: 0.1, test: 0.1, seed: 42 }
`,
  };
  files['prompts/default.yaml'] = {
    text: `# A versioned prompt template with few-shot examples (see docs/projects.md). Bump version when you edit it;
# serve.yaml and eval.yaml pin it as prompts/default.yaml@1. Keep old versions under versions: [...] if you like.
id: ${name}
version: 1
system: ${q(s.system)}
few_shot:
${s.shots.map(([u, a]) => `  - { user: ${q(u)}, assistant: ${q(a)} }`).join('\n')}
`,
  };
  if (!opts.noTrain) {
    files['pretrain.yaml'] = {
      text: `# Builds the tiny base model from nothing (no network): a byte-level BPE tokenizer trained on the chats
# rendered as text (out/corpus, written by the pipeline's train stage), then a random tiny model trained on it.
model: out/train/base
train_tokenizer: true
tokenizer_vocab_size: 1024
model_preset: tiny
dataset: out/corpus/train-text.jsonl
eval_dataset: out/corpus/validation-text.jsonl
output_dir: out/train/pretrain
stage: pt
finetuning_type: full
cutoff_len: 128
per_device_train_batch_size: 8
learning_rate: 5.0e-3
lr_scheduler_type: cosine
warmup_ratio: 0.05
num_train_epochs: 24
save_steps: 20
seed: 1
`,
    };
    files['train.yaml'] = {
      text: `# LoRA SFT of the pretrained base on the clean chats, loss on assistant turns only (see docs/train.md).
model: out/train/pretrain/model
dataset: out/data/train.jsonl
eval_dataset: out/data/validation.jsonl
output_dir: out/train/lora
stage: sft
finetuning_type: lora
lora_rank: 8
lora_alpha: 16
lora_target: all-linear
cutoff_len: 192
per_device_train_batch_size: 8
learning_rate: 1.0e-2
lr_scheduler_type: cosine
warmup_ratio: 0.05
num_train_epochs: 8
save_steps: 10
seed: 42
`,
    };
  }
  const models = opts.noTrain
    ? `  # Prompt-only: point this at any served model, e.g. a hosted one:
  #   - { id: hosted, kind: endpoint, provider: dashscope, model: qwen-plus }
  - { id: local, kind: endpoint, base_url: http://127.0.0.1:8000/v1, model: model }`
    : `  - { id: base, kind: local, path: out/train/pretrain/model }
  - { id: lora, kind: local, path: out/train/pretrain/model, adapter: out/train/lora/adapter }`;
  files['eval.yaml'] = {
    text: `# Base vs fine-tune on the held-out test split (see docs/eval.md).
name: ${name}
models:
${models}
prompts:
${
  opts.noTrain
    ? '  - prompts/default.yaml@1   # the few-shot prompt file, the same one serve.yaml applies'
    : `  - { id: default, version: 1, system: ${q(s.system)} }
  # - prompts/default.yaml@1   # add the prompt-only variant: every model also answers with the few-shot prompt`
}
generation: { max_new_tokens: 32, temperature: 0, seed: 0 }
tasks:
  - { id: test, kind: generation, dataset: out/data/test.jsonl, metrics: ${s.metrics}, tokenize: auto }
out_dir: out/eval
cache: out/eval-cache.sqlite
bootstrap: { samples: 200, seed: 12345 }
`,
  };
  files['serve.yaml'] = {
    text: opts.noTrain
      ? `# Prompt-only: serve a hosted model (or any local model folder) with prompts/default.yaml (see docs/serve.md).
port: 8000
models:
  - { name: model, backend: upstream, provider: dashscope, model: qwen-plus, prompt: prompts/default.yaml@1 }
`
      : `# The exported model (out/export, written by the pipeline's export stage) behind the OpenAI-compatible API.
port: 8000
models:
  - { name: ${name}, backend: local, path: out/export }
`,
  };
  const stages = opts.noTrain
    ? `  data: { config: data.yaml }
  serve: { config: serve.yaml, prompt: ${q(s.smoke)}, inputs: [prompts] }`
    : `  data: { config: data.yaml }
  train: { pretrain: pretrain.yaml, config: train.yaml }
  eval: { config: eval.yaml }
  export: { input: out/train/lora, format: hf, out: out/export }
  serve: { config: serve.yaml, prompt: ${q(s.smoke)} }`;
  files['pipeline.yaml'] = {
    text: `# loom run pipeline.yaml [--from STAGE] [--only STAGE] — run from this folder (see docs/projects.md).
# Each stage is skipped when its config files and inputs are unchanged since its last finished run.
name: ${name}
stages:
${stages}
`,
  };
  files['.gitignore'] = { text: 'out/\n.loom/\n' };
  files['README.md'] = {
    text: `# ${s.title}

Made by \`loom init --template ${name}${opts.noTrain ? ' --no-train' : ''}\`. Run the whole pipeline from this folder:

    loom run pipeline.yaml
    loom runs list
    loom lineage out/export

Sample data sources and licences: see the SOURCE.md files under data/.
`,
  };
  return files;
}
