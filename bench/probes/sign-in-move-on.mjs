// How long the portal's number-matching page takes to move on after the phone approves: from the
// device API's answer to the browser at /settings, in headless Chromium. With BEFORE_ROOT (a built
// checkout of another commit), that build too, in alternating rounds so machine noise hits both alike.
// Usage (after npm run build): node bench/probes/sign-in-move-on.mjs [SIGN_INS=10] [BEFORE_ROOT]
import { fileURLToPath } from 'node:url';
import { pct } from './probe-kit.mjs';

const signIns = Number(process.argv[2] ?? 10);
const roots = [['this build', fileURLToPath(new URL('../../', import.meta.url))]];
if (process.argv[3]) roots.push(['before', process.argv[3].replace(/\/?$/, '/')]);

const targets = [];
for (const [name, root] of roots) {
  const kit = await import(`${root}dist/test/e2e/browser-kit.js`);
  const { enrol } = await import(`${root}dist/test/e2e/harness.js`);
  // More sign-ins than the default push cap (10 an hour per user) allows.
  const fx = await kit.startPortalFixture(['mo'], 'https://localhost:0', {}, { limits: { pushesPerUserPerHour: 10_000 } });
  targets.push({ name, kit, fx, token: await enrol(fx.m, 'mo'), times: [] });
}
try {
  for (let i = 0; i < signIns; i++) {
    for (const t of targets) {
      const page = await t.fx.newPage();
      await t.kit.signIn(page, 'mo', t.kit.portalPassword('mo'));
      const shown = Number(await page.getByTestId('match-number').textContent());
      // A moment on the page, as a person reading the number takes.
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 1500));
      const { status } = await t.kit.pickOnPhone(t.fx.m.portal, t.token, shown);
      if (status !== 200) throw new Error(`approve answered ${status}`);
      const t0 = process.hrtime.bigint();
      await page.waitForURL('**/settings');
      t.times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await page.context().close();
    }
  }
  for (const t of targets) {
    const s = [...t.times].sort((a, b) => a - b);
    console.log(`${t.name}: ${s.length} sign-ins, tap to /settings p50 ${pct(s, 50).toFixed(0)} ms, max ${s[s.length - 1].toFixed(0)} ms`);
  }
} finally {
  for (const t of targets) await t.fx.close();
}
