import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../core/atomic.ts';
import { LoomError } from '../core/errors.ts';
import { TEMPLATES, type TemplateName, type TemplateOptions, templateFiles } from './templates.ts';

/** `loom init DIR --template T`: writes a project folder that runs as it is. Library entry point for the studio. */
const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface InitResult {
  dir: string;
  template: TemplateName;
  files: string[];
}

function isTemplate(name: string): name is TemplateName {
  return (TEMPLATES as readonly string[]).includes(name);
}

export function initProject(dir: string, template: string, opts: TemplateOptions = {}): InitResult {
  if (!isTemplate(template)) {
    throw new LoomError('CONFIG_INVALID', `unknown template '${template}' / 未知模板 '${template}'`, {
      field: 'template',
      hint: `one of ${TEMPLATES.join(', ')}`,
    });
  }
  const abs = resolve(dir);
  if (existsSync(abs)) {
    if (!statSync(abs).isDirectory()) {
      throw new LoomError('OUTPUT_WRITE', `${abs} exists and is not a folder / ${abs} 已存在且不是文件夹`, {
        file: abs,
        hint: 'choose a new folder name',
      });
    }
    if (readdirSync(abs).length > 0) {
      // never mix a template into someone's files: refusing keeps their data untouched
      throw new LoomError('OUTPUT_WRITE', `${abs} is not empty / ${abs} 不是空文件夹`, {
        file: abs,
        hint: 'pass a new or empty folder (loom init my-project --template …); nothing was written',
      });
    }
  }
  const files = templateFiles(template, opts);
  const written: string[] = [];
  for (const [rel, f] of Object.entries(files)) {
    const to = join(abs, rel);
    mkdirSync(dirname(to), { recursive: true });
    if ('text' in f) writeFileAtomic(to, f.text);
    else copyFileSync(join(REPO, f.copy), to);
    written.push(rel);
  }
  return { dir: abs, template, files: written.sort() };
}
