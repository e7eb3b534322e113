/**
 * Where a Node process's heap grows between two heap snapshots (.heapsnapshot files written by
 * `node --heapsnapshot-signal=SIGUSR2` or v8.writeHeapSnapshot): bytes and counts per constructor
 * or node type, the largest growth first. Divide by the sessions opened in between.
 * Usage: node dist/bench/heap-summary.js BEFORE.heapsnapshot AFTER.heapsnapshot [DIVISOR]
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

function summarise(file: string): Map<string, { size: number; count: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const type = types[s.nodes[i + typeAt]!]!;
    const name = type === 'object' || type === 'native' || type === 'closure' ? `${type}:${s.strings[s.nodes[i + nameAt]!]!.slice(0, 60)}` : type;
    const e = out.get(name) ?? { size: 0, count: 0 };
    e.size += s.nodes[i + sizeAt]!;
    e.count += 1;
    out.set(name, e);
  }
  return out;
}

const [beforeFile, afterFile, divisorArg] = process.argv.slice(2);
if (!beforeFile || !afterFile) throw new Error('usage: heap-summary BEFORE AFTER [DIVISOR]');
const divisor = Number(divisorArg ?? 1);
const before = summarise(beforeFile);
const after = summarise(afterFile);
const rows = [...after.entries()]
  .map(([name, a]) => {
    const b = before.get(name) ?? { size: 0, count: 0 };
    return { name, bytes: (a.size - b.size) / divisor, count: (a.count - b.count) / divisor };
  })
  .sort((x, y) => y.bytes - x.bytes);
const total = rows.reduce((t, r) => t + r.bytes, 0);
process.stdout.write(`heap growth per unit: ${(total / 1024).toFixed(1)} KiB\n`);
for (const r of rows.slice(0, Number(process.env.ROWS ?? 40))) process.stdout.write(`${(r.bytes / 1024).toFixed(2).padStart(8)} KiB ${r.count.toFixed(1).padStart(7)} x  ${r.name}\n`);
