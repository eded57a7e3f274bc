/**
 * Markup → plain text for ingest. `htmlToText(html)` parses with node-html-parser, drops script, style,
 * noscript, template, svg and head content and comments, and keeps block structure as line breaks (entities
 * decoded). `markdownToText(md)` removes Markdown syntax while keeping the words: headings, emphasis, link and
 * image syntax (link text kept, image alt kept), code fences (code kept), block quotes, tables (cells joined by
 * spaces) and HTML tags inside Markdown. Both return text whose paragraphs are separated by blank lines.
 */
import { parse } from 'node-html-parser';

const DROP_TAGS = ['script', 'style', 'noscript', 'template', 'svg', 'head', 'iframe', 'object'];

export function htmlToText(html: string): string {
  const root = parse(html, { comment: false, blockTextElements: { script: false, style: false, noscript: false } });
  for (const tag of DROP_TAGS) for (const el of root.querySelectorAll(tag)) el.remove();
  return root.structuredText
    .split('\n')
    .map((l) => l.replace(/[ \t\u00a0]+/g, ' ').trim())
    .filter((l) => l !== '')
    .join('\n');
}

const ENTITY: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

export function markdownToText(md: string): string {
  const out: string[] = [];
  let inFence = false;
  for (const raw of md.replace(/\r\n?/g, '\n').split('\n')) {
    if (/^\s*(```|~~~)/.test(raw)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) {
      out.push(raw);
      continue;
    }
    let line = raw;
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      out.push('');
      continue;
    }
    if (/^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(line)) continue;
    line = line
      .replace(/^\s{0,3}#{1,6}\s+/, '')
      .replace(/\s+#+\s*$/, '')
      .replace(/^\s*(>\s?)+/, '')
      .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
      .replace(/\[([^\]]+)\]\[[^\]]*\]/g, '$1')
      .replace(/^\s*\[[^\]]+\]:\s*\S+.*$/, '')
      .replace(/<\/?[a-zA-Z][^<>]*>/g, '')
      .replace(/\*\*(?=\S)(.+?)(?<=\S)\*\*/g, '$1')
      .replace(/(^|[^\w])__(?=\S)(.+?)(?<=\S)__(?!\w)/g, '$1$2')
      .replace(/(^|[^\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])/g, '$1$2')
      .replace(/(^|[^\w])_(?=\S)(.+?)(?<=\S)_(?!\w)/g, '$1$2')
      .replace(/~~(.+?)~~/g, '$1')
      .replace(/`([^`]+)`/g, '$1')
      .replace(/&(amp|lt|gt|quot|apos|nbsp);/g, (_m, e: string) => ENTITY[e]!);
    if (/^\s*\|.*\|\s*$/.test(line)) {
      line = line
        .trim()
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim())
        .join(' ');
    }
    out.push(line.replace(/\s+$/, ''));
  }
  return out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
