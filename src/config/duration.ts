const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "500ms", "20s", "15m", "24h", "30d" into milliseconds; null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m || m[1] === undefined || m[2] === undefined) return null;
  const unit = UNITS[m[2]];
  if (unit === undefined) return null;
  const ms = Math.round(Number(m[1]) * unit);
  return Number.isFinite(ms) ? ms : null;
}

/** Formats milliseconds back into the largest whole unit ("24h", "1500ms"). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
