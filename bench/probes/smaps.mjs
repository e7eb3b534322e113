// Where a process's resident memory lives, from /proc/PID/smaps, in KiB: the brk heap (glibc's main
// arena), anonymous mappings (V8's heap pages, mmapped large mallocs, thread stacks, and glibc's
// other arenas, which arenaKiB() picks out) and file mappings.
import { readFileSync } from 'node:fs';

export function smapsKiB(pid) {
  const out = { heap: 0, anon: 0, file: 0, total: 0 };
  let kind = 'anon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (m) {
      const name = m[1];
      kind = name === '[heap]' ? 'heap' : name.startsWith('/') ? 'file' : 'anon';
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r) {
      out[kind] += Number(r[1]);
      out.total += Number(r[1]);
    }
  }
  return out;
}

/** Arenas: glibc's non-main arenas are a 64 MiB-aligned reservation split into rw and ---p parts. */
export function arenaKiB(pid) {
  const lines = readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  let total = 0;
  let count = 0;
  for (let i = 0; i < lines.length; i++) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ 0\s*$/.exec(lines[i]);
    if (!m) continue;
    const start = BigInt('0x' + m[1]);
    if (start % (64n << 20n) !== 0n || !m[3].startsWith('rw')) continue;
    const next = /^([0-9a-f]+)-([0-9a-f]+) ---p/.exec(lines.slice(i + 1).find((l) => /^[0-9a-f]+-/.test(l)) ?? '');
    const end = next ? BigInt('0x' + next[2]) : BigInt('0x' + m[2]);
    if (end - start !== 64n << 20n) continue;
    const rss = lines.slice(i + 1).find((l) => l.startsWith('Rss:'));
    total += Number(/(\d+)/.exec(rss)[1]);
    count++;
  }
  return { arenas: total, arenaCount: count };
}
