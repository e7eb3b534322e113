// Preloaded by bench/probes/login-garbage.mjs: V8's one-line-per-GC trace (name=value pairs) on
// stdout, in the server process only (the CLI children started meanwhile print JSON there).
'use strict';
if (process.argv.includes('start')) require('node:v8').setFlagsFromString('--trace-gc-nvp');
