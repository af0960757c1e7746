/**
 * Whether an `Accept` header ranks HTML above JSON (Express's `req.accepts(['json', 'html']) === 'html'`,
 * without Express): each type gets the quality of the most specific media range that matches it; a tie,
 * a missing header or `*\/*` alone means JSON, so fetch and curl get JSON and a browser's form post HTML.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(',').map(parseRange);
  return quality(ranges, 'text', 'html') > quality(ranges, 'application', 'json');
}

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

function parseRange(text: string): MediaRange {
  const [mediaType = '', ...params] = text.split(';').map((part) => part.trim().toLowerCase());
  const [type = '', subtype = ''] = mediaType.split('/');
  const qParam = params.find((param) => param.startsWith('q='));
  const q = qParam === undefined ? 1 : Number(qParam.slice(2));
  return { type, subtype, q: Number.isFinite(q) ? q : 0 };
}

/** The q of the most specific range matching `type/subtype` (exact, then `type/*`, then `*\/*`); 0 if none. */
function quality(ranges: readonly MediaRange[], type: string, subtype: string): number {
  let best = { specificity: -1, q: 0 };
  for (const range of ranges) {
    const specificity =
      range.type === type && range.subtype === subtype
        ? 2
        : range.type === type && range.subtype === '*'
          ? 1
          : range.type === '*' && range.subtype === '*'
            ? 0
            : -1;
    if (specificity > best.specificity) best = { specificity, q: range.q };
  }
  return best.q;
}
