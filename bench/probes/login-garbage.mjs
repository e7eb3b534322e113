// What a login through mailotp leaves to the young-generation collector (scavenges): per login the
// bytes allocated on the JS heap, the bytes still alive at a scavenge (copied or promoted), and
// the scavenges' pauses. From V8's --trace-gc-nvp lines (bench/probes/gc-trace.cjs).
// Usage (after npm run build): node bench/probes/login-garbage.mjs [LOGINS=2000] [HELD=0]
// HELD: idle logged-in sessions kept open through mailotp meanwhile.
import { fileURLToPath } from 'node:url';
import { login, pct, sequentialLogins, startTarget } from './probe-kit.mjs';

const [logins, heldCount] = [2000, 0].map((d, i) => Number(process.argv[2 + i] ?? d));
process.env.PROBE_KEEP_STDOUT = '1'; // the GC trace lines are read from mailotp's stdout
const t = await startTarget('mailotp', heldCount + 100, `--require ${fileURLToPath(new URL('./gc-trace.cjs', import.meta.url))}`);
const held = [];
for (let i = 0; i < heldCount; i += 50) held.push(...(await Promise.all(Array.from({ length: Math.min(50, heldCount - i) }, () => login(t.port)))));
const run = (n) => sequentialLogins(t.port, n);
await run(300);
await new Promise((r) => setTimeout(r, 500));
const scavenges = () => t.log().split('\n').filter((l) => /\bgc=s\b/.test(l));
const skip = scavenges().length;
await run(logins);
await new Promise((r) => setTimeout(r, 500));
const field = (l, k) => Number(new RegExp(`\\b${k}=([0-9.]+)`).exec(l)?.[1] ?? NaN);
const lines = scavenges().slice(skip);
const sum = (k) => lines.reduce((a, l) => a + field(l, k), 0);
const pauses = lines.map((l) => field(l, 'pause')).sort((a, b) => a - b);
console.log(`${logins} sequential logins through mailotp (${held.length} idle sessions held): ${lines.length} scavenges`);
console.log(`per login: ${(sum('allocated') / logins / 1024).toFixed(1)} KiB allocated, ${((sum('promoted') + sum('new_space_survived')) / logins / 1024).toFixed(1)} KiB alive at a scavenge (${(sum('promoted') / logins / 1024).toFixed(1)} KiB of it promoted)`);
console.log(`scavenge pause: median ${pct(pauses, 50).toFixed(2)} ms, max ${pauses.at(-1)?.toFixed(2)} ms`);
for (const c of held) c.close();
await t.stop();
