/** Escapes text for HTML element content and quoted attribute values (the five characters that matter). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * The font stack of every HTML report (data, eval, train loss chart). CJK fonts are named explicitly (Linux, macOS,
 * Windows) because the default sans font of many machines has no Chinese glyphs, and a report of Chinese text must
 * not render as boxes; they come before the generic family, which would otherwise win.
 */
export const REPORT_FONT_STACK =
  'system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","PingFang SC","Microsoft YaHei","Source Han Sans SC",sans-serif';
