/**
 * Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbouring letters each cost 1, so `hots` is 1 from `host` (plain Levenshtein says 2).
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** Where to look for the name an unknown option most likely meant. */
export interface OptionNameCandidates {
  /** The names valid where the unknown one was found. */
  readonly names: readonly string[];
  /** Names users bring from other libraries, mapped to ours (`password` → `accessKey`). */
  readonly aliases?: Readonly<Record<string, string>>;
}

/** Shortest unknown name that may stand for a longer option it begins (`maxAge` → `maxAgeInMilliseconds`). */
const MIN_PREFIX_LENGTH = 4;

/**
 * The known name an unknown option most likely meant, or undefined when none is close. In order: the
 * same name in another case (`idleTimeOut`), an alias (`password` → `accessKey`), the only known name
 * it begins (`connectionTimeout` → `connectionTimeoutInMilliseconds`), the nearest name within an
 * edit distance of a third of its length, at least 1 (`hots` → `host`, `secret` → `secrets`).
 *
 * @example
 * closestOptionName('idleTimeOut', ['cookie', 'idleTimeout']); // 'idleTimeout'
 * closestOptionName('colour', ['cookie', 'idleTimeout']); // undefined
 */
export function closestOptionName(unknown: string, candidates: OptionNameCandidates): string | undefined {
  const { names, aliases = {} } = candidates;
  const lower = unknown.toLowerCase();
  const sameLetters = names.find((name) => name.toLowerCase() === lower);
  if (sameLetters !== undefined) return sameLetters;
  const alias = Object.entries(aliases).find(([from]) => from.toLowerCase() === lower)?.[1];
  if (alias !== undefined) return alias;
  if (lower.length >= MIN_PREFIX_LENGTH) {
    const longer = names.filter((name) => name.toLowerCase().startsWith(lower));
    if (longer.length === 1) return longer[0];
  }
  const limit = Math.max(1, Math.floor(unknown.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const name of names) {
    const distance = editDistance(lower, name.toLowerCase());
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}
