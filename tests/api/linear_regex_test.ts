import assert from "node:assert/strict";
import { LinearRegex, MAX_PROGRAM, parseRegex } from "../../src/api/linear_regex.ts";

/** A small seeded generator, so a failing case can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function randomPattern(next: () => number, depth = 0): string {
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)];
  const atoms = ["a", "b", "1", "-", ".", "[ab]", "[^a]", "[a-b1]", "\\d", "\\w", "\\W", "[\\-a]"];
  let out = "";
  const length = 1 + Math.floor(next() * 3);
  for (let i = 0; i < length; i++) {
    let atom = depth < 3 && next() < 0.3
      ? `(${next() < 0.5 ? "?:" : ""}${randomPattern(next, depth + 1)})`
      : pick(atoms);
    if (next() < 0.05) atom = pick(["^", "$"]);
    else if (next() < 0.4) atom += pick(["*", "+", "?", "{2}", "{1,3}", "{0,}", "*?", "+?"]);
    out += atom;
  }
  if (depth < 3 && next() < 0.2) out += `|${randomPattern(next, depth + 1)}`;
  return out;
}

function randomInput(next: () => number): string {
  const length = Math.floor(next() * 9);
  let out = "";
  for (let i = 0; i < length; i++) out += "ab1-"[Math.floor(next() * 4)];
  return out;
}

Deno.test("LinearRegex matches exactly what RegExp (u flag) matches, on random patterns", () => {
  const next = random(20261203);
  let compared = 0;
  for (let p = 0; p < 1500; p++) {
    const pattern = randomPattern(next);
    const reference = new RegExp(`^(?:${pattern})$`, "u");
    const linear = new LinearRegex(parseRegex(pattern));
    for (let i = 0; i < 25; i++) {
      const input = randomInput(next);
      assert.equal(linear.test(input), reference.test(input), `/${pattern}/ on "${input}"`);
      compared++;
    }
  }
  assert.equal(compared, 37_500);
});

Deno.test("LinearRegex agrees with RegExp on escapes, classes and code points", () => {
  const cases: [string, string[]][] = [
    ["\\t\\n\\x41\\u0042\\u{1F600}", ["\t\nAB\u{1F600}", "\t\nAB"]],
    ["[\\d\\s-]+", ["1 -2", "a"]],
    ["[^\\w]", ["-", "a", "\u{1F600}"]],
    [".", ["\n", "\u2028", "x", "\u{1F600}"]],
    ["\\cJ\\0", ["\n\0"]],
    ["[\\b]", ["\b"]],
    ["(?<word>[a-z]+)-\\1?".replace("\\1?", "x"), ["abc-x"]],
    ["a{0}b", ["b", "ab"]],
    ["(?:)", [""]],
    ["[]", ["", "a"]],
    ["[^]", ["\n"]],
    ["\\$\\^\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\/\\\\", ["$^.*+?()[]{}|/\\"]],
    ["(^a|b$)+", ["a", "b", "ab", "ba"]],
  ];
  for (const [pattern, inputs] of cases) {
    const reference = new RegExp(`^(?:${pattern})$`, "u");
    const linear = new LinearRegex(parseRegex(pattern));
    for (const input of inputs) {
      assert.equal(
        linear.test(input),
        reference.test(input),
        `/${pattern}/ on ${JSON.stringify(input)}`,
      );
    }
  }
});

Deno.test("a pattern that backtracks catastrophically in RegExp costs length x size here", () => {
  // "names made of words": 18.5 s for one alert in the agent with RegExp.
  const linear = new LinearRegex(parseRegex("([a-z]+-?)+"));
  const crafted = `${"a".repeat(32)}!`;
  assert.equal(linear.test(crafted), false);
  assert.ok(
    linear.lastSteps <= (crafted.length + 1) * linear.size,
    `${linear.lastSteps} steps for a program of ${linear.size}`,
  );
  assert.equal(linear.test("web-front-end"), true);
  const nested = new LinearRegex(parseRegex("(a|aa|a?){1,30}(a*)*b"));
  const long = "a".repeat(60);
  assert.equal(nested.test(long), false);
  assert.ok(nested.lastSteps <= (long.length + 1) * nested.size);
});

Deno.test("parseRegex() refuses what needs backtracking or tables, naming it", () => {
  const refusals: [string, RegExp][] = [
    ["(a)\\1", /backreferences are not supported/],
    ["(?<n>a)\\k<n>", /backreferences are not supported/],
    ["a(?=b)", /lookahead and lookbehind are not supported/],
    ["(?<!a)b", /lookahead and lookbehind are not supported/],
    ["\\bword", /word boundaries/],
    ["\\p{L}+", /unicode property escapes/],
    ["a{1001}", /repetition counts above 1000/],
    ["(a{1000}){1000}", new RegExp(`too large.*over ${MAX_PROGRAM}`)],
    ["a**", /nothing to repeat/],
    ["(a", /unterminated group/],
    ["a)", /unmatched "\)"/],
    ["[a", /unterminated character class/],
    ["[z-a]", /range out of order/],
    ["a{", /incomplete quantifier/],
    ["\\q", /invalid escape/],
    ["\\", /at end of pattern/],
  ];
  for (const [pattern, message] of refusals) {
    assert.throws(() => new LinearRegex(parseRegex(pattern)), message, pattern);
  }
});
