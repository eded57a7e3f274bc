/**
 * Refusal detection for "refusal expected" assertions: phrase lists in Chinese and English. Phrases were chosen
 * from how customer-service and chat models decline (apology + inability), not from any one model's wording.
 */
const refusalPatterns: RegExp[] = [
  /\b(?:I|we)\s*(?:am|'m|are|'re)?\s*(?:sorry|afraid)\b[^.]{0,80}\b(?:can(?:no|')t|unable|not able|won't)\b/i,
  /\b(?:I|we)\s+(?:can(?:no|')t|cannot|won't|am unable to|are unable to|am not able to)\s+(?:help|assist|provide|share|do|disclose|answer|comply|discuss)/i,
  /\b(?:not able|unable) to (?:help|assist|provide|share|disclose)/i,
  /\bthat(?:'s| is) (?:outside|beyond) (?:my|our|the) (?:scope|remit)/i,
  /\b(?:outside|beyond) (?:of )?(?:what (?:I|we) can (?:help|assist) with|(?:my|our) (?:scope|remit|area))/i,
  // 不便 is left out here: 抱歉给您带来不便 is an apology, not a refusal (不便透露 is caught below).
  /(?:抱歉|对不起|不好意思)[^。！？]{0,40}(?:无法|不能|没办法|不可以)/,
  /(?:无法|不能|不便)(?:为您)?(?:提供|透露|回答|协助|处理|帮助|告知|执行)/,
  /(?:超出|不在)(?:了)?(?:我的|我们的)?(?:服务|回答|业务)?范围/,
];

export function isRefusal(text: string): boolean {
  return refusalPatterns.some((re) => re.test(text));
}
