/**
 * The dataset format names (the data stage implements each in src/data/formats/). The list lives in config, below
 * data, because config schemas validate `format:` keys against it.
 */
export const FORMAT_NAMES = [
  'messages',
  'text',
  'classification',
  'preference',
  'alpaca',
  'sharegpt',
  'openai',
] as const;
export type FormatName = (typeof FORMAT_NAMES)[number];
