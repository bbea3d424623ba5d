import assert from "node:assert/strict";
import { formatMode, isChmodMode, modeString, parseMode } from "../../src/api/mod.ts";

Deno.test("parseMode() reads chmod digits as octal", () => {
  const cases: [number, number][] = [[444, 0o444], [0, 0], [7, 0o7], [600, 0o600], [4755, 0o4755], [
    7777,
    0o7777,
  ]];
  for (const [written, bits] of cases) assert.equal(parseMode(written), bits, `mode ${written}`);
});

Deno.test("parseMode() rejects digits 8 and 9, negatives, fractions and values above 7777", () => {
  for (const bad of [8, 9, 448, 1000_0, 7778, 8000, -1, 44.5, 19]) {
    assert.equal(isChmodMode(bad), false, `mode ${bad}`);
    assert.throws(() => parseMode(bad), RangeError);
  }
});

Deno.test("formatMode() inverts parseMode()", () => {
  for (let bits = 0; bits <= 0o7777; bits++) assert.equal(parseMode(formatMode(bits)), bits);
});

Deno.test("modeString() renders like ls -l", () => {
  assert.equal(modeString(0o444), "r--r--r--");
  assert.equal(modeString(0o755), "rwxr-xr-x");
  assert.equal(modeString(0o4755), "rwsr-xr-x");
  assert.equal(modeString(0o2644), "rw-r-Sr--");
  assert.equal(modeString(0o1777), "rwxrwxrwt");
});
