#!/usr/bin/env node
// Fails when a module under src/ exports a name that no file in the repo imports (src, test, bench, tools,
// scripts, studio-ui). Barrels (`index.ts`) are a stage's public entry point and are exempt; a name they
// re-export counts as used in the module it comes from. Names used only inside their own file should lose
// `export`; names used nowhere should go. Exported types are not checked. Why our own: dependency-cruiser checks modules, not names, and the
// TypeScript compiler API (already a dev dependency) answers this in a few seconds.
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const DIRS = ['src', 'test', 'bench', 'tools', 'scripts', 'studio-ui'];

function walk(dir, out) {
  for (const f of readdirSync(dir)) {
    if (f === 'node_modules' || f.startsWith('.')) continue;
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|tsx|mts|mjs)$/.test(f) && !f.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const files = DIRS.flatMap((d) => {
  try {
    return walk(join(root, d), []);
  } catch {
    return [];
  }
});
const program = ts.createProgram(files, {
  allowJs: true,
  noEmit: true,
  allowImportingTsExtensions: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  jsx: ts.JsxEmit.ReactJSX,
  jsxImportSource: 'preact',
});
const checker = program.getTypeChecker();
const used = new Set();
const key = (mod, name) => `${mod.name}#${name}`;
const markAll = (mod) => {
  for (const e of checker.getExportsOfModule(mod)) used.add(key(mod, e.name));
};

for (const sf of program.getSourceFiles()) {
  if (sf.isDeclarationFile || sf.fileName.includes('/node_modules/')) continue;
  const visit = (n) => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier) {
      const mod = checker.getSymbolAtLocation(n.moduleSpecifier);
      if (mod) {
        const named = ts.isImportDeclaration(n) ? n.importClause?.namedBindings : n.exportClause;
        if (ts.isImportDeclaration(n) && n.importClause?.name) used.add(key(mod, 'default'));
        if (named && (ts.isNamedImports(named) || ts.isNamedExports(named))) {
          for (const el of named.elements) used.add(key(mod, (el.propertyName ?? el.name).text));
        } else if (named || ts.isExportDeclaration(n)) markAll(mod); // `* as ns` or `export * from`
      }
    }
    if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0]) {
      const mod = checker.getSymbolAtLocation(n.arguments[0]);
      if (mod) markAll(mod);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
}

const unused = [];
for (const sf of program.getSourceFiles()) {
  const rel = relative(root, sf.fileName);
  if (!rel.startsWith('src/') || rel.endsWith('/index.ts')) continue;
  const mod = checker.getSymbolAtLocation(sf);
  if (!mod) continue;
  for (const e of checker.getExportsOfModule(mod)) {
    if (used.has(key(mod, e.name))) continue;
    // Types may stay exported: they document the shapes an exported function takes or returns.
    const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
    if (!(target.flags & ts.SymbolFlags.Value)) continue;
    const local = sf.text.split(new RegExp(`\\b${e.name.replace(/\$/g, '\\$')}\\b`)).length - 1 > 1;
    unused.push(
      `${rel}: ${e.name} ${local ? '(only used in its own file: drop `export`)' : '(used nowhere: delete it)'}`,
    );
  }
}
if (unused.length) {
  console.error(`unused exports (${unused.length}):\n  ${unused.join('\n  ')}`);
  process.exit(1);
}
console.log(`unused-exports: ${files.length} files, no unused exports`);
