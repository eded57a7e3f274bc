/**
 * Number sequences for the near-dup number guard (nearDedupConfig.numbers_must_match). Shingles map digits to
 * '0' so templated rows (order IDs, dates) still hash alike; this guard puts the actual values back for the final
 * drop decision: two texts conflict when the numbers of neither, in order, are a subsequence of the other's.
 * A changed value (13 → 3), a swap (13 … 3 → 3 … 13) or a different ID conflicts; a deleted sentence that held a
 * number does not (its sequence is a subsequence of the original's).
 */

const MAX_NUMBERS = 256;

/** The numbers of a text, in order, joined by U+001F (empty string when there are none). Full-width digits count. */
export function numberSequence(text: string): string {
  const out: string[] = [];
  const re = /[0-9０-９]+(?:[.,:：．][0-9０-９]+)*/g;
  for (let m = re.exec(text); m && out.length < MAX_NUMBERS; m = re.exec(text)) {
    out.push(m[0].replace(/[０-９．：]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0)));
  }
  return out.join('\u001f');
}

function isSubsequence(a: string[], b: string[]): boolean {
  let j = 0;
  for (let i = 0; i < b.length && j < a.length; i++) if (a[j] === b[i]) j++;
  return j === a.length;
}

/** True when the two sequences (from numberSequence) hold different numbers, not just fewer. */
export function numbersConflict(a: string, b: string): boolean {
  if (a === b || a === '' || b === '') return false;
  const x = a.split('\u001f');
  const y = b.split('\u001f');
  return x.length <= y.length ? !isSubsequence(x, y) : !isSubsequence(y, x);
}
