import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fuzzProperties } from './properties.js';

// Short runs in the normal suite; `npm run fuzz` runs the same properties for longer.
const RUNS = 300;

describe('fuzz properties of the command readers, SASL decoding and the PROXY header parser', () => {
  for (const { name, property } of fuzzProperties()) {
    it(name, () => {
      fc.assert(property, { numRuns: RUNS });
    });
  }
});
