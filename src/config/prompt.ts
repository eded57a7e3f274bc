/**
 * Prompt files, the prompt-only path: `prompts/*.yaml` in a project, one versioned prompt (system text, few-shot
 * turns, an optional user template) or a history of versions. `loom serve` applies one to any model
 * (`prompt: prompts/faq.yaml@2` in serve.yaml) and `loom eval` compares it with fine-tuned models (a string entry
 * under `prompts:` in a suite). `@version` pins a version; without it the file's single version, or its last.
 *
 *   id: faq                          id: faq
 *   version: 2                       versions:
 *   system: You answer FAQs.           - { version: 1, system: Answer briefly. }
 *   few_shot:                          - { version: 2, system: You answer FAQs., few_shot: [...] }
 *     - { user: Hi, assistant: Hello }
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { LoomError } from '../core/errors.ts';
import { PROMPT_REF, type PromptSpec, promptSchema } from './eval.ts';
import { loadConfig } from './load.ts';

const version = z.union([z.string().min(1), z.number()]);
const body = promptSchema.omit({ id: true, version: true });

const promptFileSchema = z
  .object({
    id: z.string().min(1),
    description: z.string().optional(),
    version: version.optional(),
    system: z.string().optional(),
    few_shot: body.shape.few_shot.optional(),
    user: z.string().optional(),
    versions: z.array(body.extend({ version }).strict()).min(1).optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    const flat = f.system !== undefined || (f.few_shot?.length ?? 0) > 0 || f.user !== undefined;
    if (f.versions && (flat || f.version !== undefined))
      ctx.addIssue({ code: 'custom', path: ['versions'], message: 'use either versions: [...] or one version' });
    if (!f.versions && f.version === undefined)
      ctx.addIssue({ code: 'custom', path: ['version'], message: 'a prompt file needs a version (bump it on edit)' });
    const seen = new Set<string>();
    f.versions?.forEach((v, i) => {
      if (seen.has(String(v.version)))
        ctx.addIssue({ code: 'custom', path: ['versions', i, 'version'], message: `version ${v.version} twice` });
      seen.add(String(v.version));
    });
  });
export type PromptFile = z.output<typeof promptFileSchema>;

/** `2`, `v2` and `V2` name the same version. */
const sameVersion = (a: string | number, want: string): boolean =>
  String(a).replace(/^v/i, '') === want.replace(/^v/i, '');

export interface LoadedPrompt {
  spec: PromptSpec;
  file: string;
}

/** Loads `ref` (relative to `baseDir`) and picks its version; errors name the file, the version and the fix. */
export function loadPromptRef(ref: string, baseDir: string): LoadedPrompt {
  const m = PROMPT_REF.exec(ref);
  if (!m)
    throw new LoomError('CONFIG_INVALID', `prompt "${ref}" is not a prompt file reference`, {
      field: 'prompt',
      hint: 'write it as prompts/<name>.yaml or prompts/<name>.yaml@<version>',
    });
  const file = resolve(baseDir, m[1]!);
  const want = m[2];
  const { config: f } = loadConfig(file, promptFileSchema);
  const all = f.versions ?? [{ version: f.version!, system: f.system, few_shot: f.few_shot ?? [], user: f.user }];
  const v = want === undefined ? all.at(-1)! : all.find((x) => sameVersion(x.version, want));
  if (!v)
    throw new LoomError(
      'CONFIG_INVALID',
      `${m[1]} has no version ${want} (it has ${all.map((x) => x.version).join(', ')})`,
      {
        file,
        field: 'version',
        hint: `reference one of its versions (${m[1]}@${all.at(-1)!.version}) or add version ${want} to the file`,
      },
    );
  return { file, spec: { id: f.id, version: v.version, system: v.system, few_shot: v.few_shot ?? [], user: v.user } };
}

/** A suite's `prompts:` with every file reference loaded (inline prompts pass through). */
export function resolvePrompts(prompts: readonly (PromptSpec | string)[], baseDir: string): PromptSpec[] {
  return prompts.map((p) => (typeof p === 'string' ? loadPromptRef(p, baseDir).spec : p));
}
