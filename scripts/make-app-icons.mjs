#!/usr/bin/env node
// Draws the web authenticator app's icons (PNG, 192 and 512 px) into src/portal/app/static/icons/:
// a blue field (full bleed, so the icon also serves as "maskable") with a white shield and a blue
// check mark inside the maskable safe zone. Run it again after changing the drawing; the PNGs are
// committed, so neither the build nor the tests need it.
import { Buffer } from 'node:buffer';
import { mkdirSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const BLUE = [29, 78, 216];
const WHITE = [255, 255, 255];
const OUT = new URL('../src/portal/app/static/icons/', import.meta.url);

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function png(size, pixel) {
  const raw = Buffer.alloc(size * (size * 3 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const [r, g, b] = pixel(x, y);
      const o = y * (size * 3 + 1) + 1 + x * 3;
      raw[o] = r;
      raw[o + 1] = g;
      raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

/** Distance from p to the segment ab, all in unit coordinates. */
function segDist(px, py, ax, ay, bx, by) {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

/** 0 = blue, 1 = white, 2 = check (blue) at unit coordinates (0..1). */
function shade(u, v) {
  // Shield: a rounded top box narrowing to a point, inside the central 60 % (maskable safe zone).
  const cx = 0.5;
  const top = 0.24;
  const mid = 0.52;
  const bottom = 0.8;
  const half = 0.25;
  let inShield = false;
  if (v >= top && v <= mid) inShield = Math.abs(u - cx) <= half;
  else if (v > mid && v <= bottom) inShield = Math.abs(u - cx) <= half * (1 - ((v - mid) / (bottom - mid)) ** 1.6);
  if (!inShield) return BLUE;
  const d = Math.min(segDist(u, v, 0.39, 0.5, 0.47, 0.59), segDist(u, v, 0.47, 0.59, 0.63, 0.41));
  return d < 0.035 ? BLUE : WHITE;
}

mkdirSync(OUT, { recursive: true });
for (const size of [192, 512]) {
  const ss = 4; // supersampling for smooth edges
  const data = png(size, (x, y) => {
    const acc = [0, 0, 0];
    for (let i = 0; i < ss; i++) {
      for (let j = 0; j < ss; j++) {
        const c = shade((x + (i + 0.5) / ss) / size, (y + (j + 0.5) / ss) / size);
        acc[0] += c[0];
        acc[1] += c[1];
        acc[2] += c[2];
      }
    }
    return acc.map((a) => Math.round(a / (ss * ss)));
  });
  writeFileSync(new URL(`icon-${size}.png`, OUT), data);
  console.log(`icon-${size}.png: ${data.length} bytes`);
}
