// Preloaded by bench/probes/minor-survivors.mjs: on SIGUSR2, two young-generation collections in a
// row, with the space sizes before, between and after, written to minor-<pid>.json in the working
// directory. What the first one keeps is what survived a scavenge; the second promotes it.
'use strict';
if (process.argv.includes('start')) {
  const v8 = require('node:v8');
  const fs = require('node:fs');
  const spaces = () => Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  process.on('SIGUSR2', () => {
    const before = spaces();
    global.gc({ type: 'minor' });
    const between = spaces();
    global.gc({ type: 'minor' });
    fs.writeFileSync(`minor-${process.pid}.json`, JSON.stringify({ before, between, after: spaces() }));
  });
}
