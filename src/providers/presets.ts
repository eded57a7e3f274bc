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

/** A list price with where it was read and the date it took effect, so a report can say how old its cost is. */
export interface PriceEntry extends Price {
  source: string;
  asOf: string;
}

/**
 * Provider list prices (standard tier, no cache discount, no batch discount), USD per million tokens, keyed
 * `provider:model` as eval model ids are. They were taken from the providers' published pricing pages on the
 * dates given; this build runs offline and did not re-check them, and providers change prices, so a suite
 * overrides or extends them with `prices:` or `prices_file:` (docs/eval.md). DashScope's China-region prices are
 * in CNY on its page; the `dashscope:` rows use the international (USD) list price of the same model.
 */
export const PRICE_TABLE: Record<string, PriceEntry> = {
  'openai:gpt-4o-mini': { input: 0.15, output: 0.6, source: 'https://openai.com/api/pricing/', asOf: '2024-07-18' },
  'openai:gpt-4o': { input: 2.5, output: 10, source: 'https://openai.com/api/pricing/', asOf: '2024-10-02' },
  'deepseek:deepseek-chat': {
    input: 0.27,
    output: 1.1,
    source: 'https://api-docs.deepseek.com/quick_start/pricing',
    asOf: '2025-02-09',
  },
  'dashscope:qwen-plus': {
    input: 0.4,
    output: 1.2,
    source: 'https://www.alibabacloud.com/help/en/model-studio/models',
    asOf: '2025-01-01',
  },
  'dashscope-intl:qwen-plus': {
    input: 0.4,
    output: 1.2,
    source: 'https://www.alibabacloud.com/help/en/model-studio/models',
    asOf: '2025-01-01',
  },
  'dashscope:qwen-turbo': {
    input: 0.05,
    output: 0.2,
    source: 'https://www.alibabacloud.com/help/en/model-studio/models',
    asOf: '2025-01-01',
  },
};

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
