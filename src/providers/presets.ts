/**
 * Presets for hosted and self-hosted OpenAI-compatible chat endpoints. Users pick one by name in a suite or
 * server config and override any field; the API key is always read from an environment variable, never a file.
 */
export interface ProviderPreset {
  baseURL: string;
  /** Environment variable holding the API key (none for local servers). */
  apiKeyEnv?: string;
  /** Hosted APIs refuse anonymous calls; local servers usually take any key or none. */
  keyRequired: boolean;
  /** Requests in flight at once; hosted APIs throttle per account, so keep this modest. */
  concurrency: number;
  notes: string;
}

export const providerPresets: Record<string, ProviderPreset> = {
  openai: {
    keyRequired: true,
    baseURL: 'https://api.openai.com/v1',
    apiKeyEnv: 'OPENAI_API_KEY',
    concurrency: 8,
    notes: 'OpenAI platform',
  },
  dashscope: {
    keyRequired: true,
    baseURL: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
    apiKeyEnv: 'DASHSCOPE_API_KEY',
    concurrency: 4,
    notes: 'Alibaba Cloud Model Studio (通义千问), OpenAI-compatible mode',
  },
  'dashscope-intl': {
    keyRequired: true,
    baseURL: 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1',
    apiKeyEnv: 'DASHSCOPE_API_KEY',
    concurrency: 4,
    notes: 'Alibaba Cloud Model Studio, Singapore region (keys are per region)',
  },
  qianfan: {
    keyRequired: true,
    baseURL: 'https://qianfan.baidubce.com/v2',
    apiKeyEnv: 'QIANFAN_API_KEY',
    concurrency: 4,
    notes: 'Baidu Qianfan (文心) v2 OpenAI-compatible API',
  },
  deepseek: {
    keyRequired: true,
    baseURL: 'https://api.deepseek.com/v1',
    apiKeyEnv: 'DEEPSEEK_API_KEY',
    concurrency: 4,
    notes: 'DeepSeek platform',
  },
  ollama: { keyRequired: false, baseURL: 'http://127.0.0.1:11434/v1', concurrency: 1, notes: 'local Ollama server' },
  vllm: {
    keyRequired: false,
    baseURL: 'http://127.0.0.1:8000/v1',
    apiKeyEnv: 'VLLM_API_KEY',
    concurrency: 16,
    notes: 'vLLM server',
  },
};

/** USD per million input and output tokens. */
export interface Price {
  input: number;
  output: number;
}

/**
 * A list price and its provenance. `sources` are what the figure was checked against: a provider's pricing page
 * (`https://…`) or a price-tracking repository at a commit (`github:owner/repo@commit:path`). `asOf` is the date that
 * source states for the figure (a page's "last updated", a tracker's `prices_checked`, the day a guide says it read
 * the page). `verified: false` marks an estimate no source confirmed; reports and the Studio show it as unverified.
 */
export interface PriceEntry extends Price {
  sources: string[];
  asOf: string;
  verified: boolean;
  note?: string;
}

// The price trackers read (their newest stored commits when this table was checked, 2026-12-07).
const GENAI_PRICES = 'github:pydantic/genai-prices@47df840a5ab10bbcffb8e5ac01b9899032245d1b';
const LLM_PRICES = 'github:simonw/llm-prices@723ef0bd3a6254436e9fe8d7f05d4d787e99f4c5';
const ALIBABA_BILLING = 'https://www.alibabacloud.com/help/en/model-studio/billing-for-model-studio';
const DEEPSEEK_PRICING = 'https://api-docs.deepseek.com/quick_start/pricing';
const DEEPSEEK_NOTE =
  'peak rate (01:00-04:00 and 06:00-10:00 UTC on weekdays); DeepSeek bills half of it off-peak, so a cost from this row is an upper bound. The legacy ids deepseek-chat / deepseek-reasoner were to stop answering after 2026-07-24 (third-party guides: chat-deep.ai, morphllm.com) and have no row.';
const BEIJING_NOTE =
  'China (Beijing) region bills in CNY (https://help.aliyun.com/en/document_detail/3023262.html: qwen-plus ¥0.8 in / ¥2 out per million tokens in the 0-128K tier, qwen-turbo ¥0.3 in; its output figure was cut off in the copy read). No USD list price for Beijing was found, so this row repeats the Singapore USD price and overstates a Beijing bill.';

/**
 * Provider list prices (standard tier, no cache discount, no batch discount), USD per million tokens, keyed
 * `provider:model` as eval model ids are. Checked on 2026-12-07 against the sources in each row, offline copies of
 * the pages and trackers (this build cannot reach the live pages); providers change prices, so a suite overrides or
 * extends them with `prices:` or `prices_file:` (docs/eval-suites.md). Qianfan (文心) lists CNY prices only and has no
 * row here: give one with `prices:`.
 */
export const PRICE_TABLE: Record<string, PriceEntry> = {
  'openai:gpt-4o-mini': {
    input: 0.15,
    output: 0.6,
    sources: [`${GENAI_PRICES}:prices/providers/openai.yml`, `${LLM_PRICES}:data/openai.json`],
    asOf: '2025-07-04',
    verified: true,
    note: 'genai-prices: prices_checked 2025-07-04; llm-prices lists the same figures',
  },
  'openai:gpt-4o': {
    input: 2.5,
    output: 10,
    sources: [`${GENAI_PRICES}:prices/providers/openai.yml`, `${LLM_PRICES}:data/openai.json`],
    asOf: '2025-07-04',
    verified: true,
    note: 'genai-prices: prices_checked 2025-07-04; llm-prices lists the same figures',
  },
  'deepseek:deepseek-flash': {
    input: 0.3,
    output: 1.2,
    sources: [DEEPSEEK_PRICING, 'https://github.com/benderandrew069/deepseek-api-pricing-2026/wiki'],
    asOf: '2026-10-27',
    verified: true,
    note: `DeepSeek-V4.1-Flash; ${DEEPSEEK_NOTE}`,
  },
  'deepseek:deepseek-v4-pro': {
    input: 1.32,
    output: 3.96,
    sources: [DEEPSEEK_PRICING, 'https://github.com/benderandrew069/deepseek-api-pricing-2026/wiki'],
    asOf: '2026-10-27',
    verified: true,
    note: `DeepSeek-V4-Pro-0813; ${DEEPSEEK_NOTE}`,
  },
  'dashscope-intl:qwen-plus': {
    input: 0.4,
    output: 1.2,
    sources: [ALIBABA_BILLING, 'https://openrouter.ai/qwen/qwen-plus'],
    asOf: '2025-04-22',
    verified: true,
    note: 'Singapore region, lowest context tier (the billing page, last updated 2025-04-22: "minimum" price); OpenRouter lists the same',
  },
  'dashscope-intl:qwen-turbo': {
    input: 0.05,
    output: 0.2,
    sources: [ALIBABA_BILLING],
    asOf: '2025-04-22',
    verified: true,
    note: 'Singapore region, lowest context tier (the billing page, last updated 2025-04-22)',
  },
  'dashscope:qwen-plus': {
    input: 0.4,
    output: 1.2,
    sources: [ALIBABA_BILLING],
    asOf: '2025-04-22',
    verified: false,
    note: BEIJING_NOTE,
  },
  'dashscope:qwen-turbo': {
    input: 0.05,
    output: 0.2,
    sources: [ALIBABA_BILLING],
    asOf: '2025-04-22',
    verified: false,
    note: BEIJING_NOTE,
  },
};

/** Where a model's price came from, for the cost column: the table (verified or not, and as of when) or the suite. */
export interface PriceProvenance {
  origin: 'table' | 'suite';
  verified: boolean;
  asOf?: string;
}

/** The provenance of the price `costOf` will use for `modelId`: the suite's own `prices` win over the table. */
export function priceProvenance(modelId: string, suitePrices: Record<string, Price>): PriceProvenance | undefined {
  if (suitePrices[modelId]) return { origin: 'suite', verified: false };
  const e = PRICE_TABLE[modelId];
  return e ? { origin: 'table', verified: e.verified, asOf: e.asOf } : undefined;
}

/** "verified 2025-07-04", "unverified", "suite price": what a cost cell says about its price, in English and zh-CN. */
export function priceLabel(p: PriceProvenance | undefined): { en: string; zh: string } | undefined {
  if (!p) return undefined;
  if (p.origin === 'suite') return { en: 'suite price', zh: '套件自定价格' };
  return p.verified
    ? { en: `verified price, as of ${p.asOf}`, zh: `价格已核实（${p.asOf}）` }
    : { en: `unverified price (${p.asOf})`, zh: `价格未核实（${p.asOf}）` };
}

/** The prices alone (what costOf reads); a suite's `prices` are merged over these. */
export const defaultPrices: Record<string, Price> = Object.fromEntries(
  Object.entries(PRICE_TABLE).map(([k, { input, output }]) => [k, { input, output }]),
);

export function costOf(
  modelId: string,
  promptTokens: number,
  completionTokens: number,
  prices: Record<string, Price>,
): number | undefined {
  const p = prices[modelId];
  if (!p) return undefined;
  return (promptTokens * p.input + completionTokens * p.output) / 1e6;
}
