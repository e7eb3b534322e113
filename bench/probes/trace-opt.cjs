// Preloaded by bench/probes/jit-settle.mjs: V8's line per optimised function and per deoptimisation on
// stdout, in the server process only (--trace-opt is refused in NODE_OPTIONS).
'use strict';
if (process.argv.includes('start')) {
  const v8 = require('node:v8');
  v8.setFlagsFromString('--trace-opt');
  v8.setFlagsFromString('--trace-deopt');
}
