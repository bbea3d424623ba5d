/**
 * The parser of the linear-time regular expressions (linear_regex.ts): an ECMAScript pattern
 * (unicode mode) into a tree, refusing with a clear message what needs backtracking or tables
 * we do not carry.
 *
 * @module
 */

/** A node of the parsed pattern. */
export type RegexNode =
  | { kind: "char"; test: (codePoint: number) => boolean }
  | { kind: "seq"; items: RegexNode[] }
  | { kind: "alt"; options: RegexNode[] }
  | { kind: "repeat"; node: RegexNode; min: number; max: number }
  | { kind: "assert"; at: "start" | "end" };

/** Largest `{n,m}` bound accepted. */
export const MAX_REPEAT = 1000;
type CharTest = (codePoint: number) => boolean;

const inRanges = (ranges: readonly (readonly [number, number])[]): CharTest => (c) =>
  ranges.some(([lo, hi]) => c >= lo && c <= hi);
const DIGIT = inRanges([[0x30, 0x39]]);
const WORD = inRanges([[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]]);
// ECMAScript WhiteSpace and LineTerminator.
const SPACE = inRanges([
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
]);
const LINE_TERMINATOR = inRanges([[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]]);
const not = (test: CharTest): CharTest => (c) => !test(c);
const SYNTAX_CHARS = new Set([..."^$\\.*+?()[]{}|/"].map((c) => c.codePointAt(0)!));
const CONTROL_ESCAPES: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13 };

/** Parses an ECMAScript pattern (unicode mode) into a tree, refusing what cannot run linearly. */
class Parser {
  readonly #chars: number[];
  readonly #pattern: string;
  #pos = 0;

  constructor(pattern: string) {
    this.#pattern = pattern;
    this.#chars = [...pattern].map((c) => c.codePointAt(0)!);
  }

  parse(): RegexNode {
    const node = this.#alternation();
    if (this.#pos < this.#chars.length) this.#fail('unmatched ")"');
    return node;
  }

  #fail(what: string): never {
    throw new SyntaxError(`${what} at offset ${this.#pos} of /${this.#pattern}/`);
  }

  #peek(offset = 0): string | undefined {
    const c = this.#chars[this.#pos + offset];
    return c === undefined ? undefined : String.fromCodePoint(c);
  }

  #alternation(): RegexNode {
    const options = [this.#sequence()];
    while (this.#peek() === "|") {
      this.#pos++;
      options.push(this.#sequence());
    }
    return options.length === 1 ? options[0] : { kind: "alt", options };
  }

  #sequence(): RegexNode {
    const items: RegexNode[] = [];
    while (this.#pos < this.#chars.length && this.#peek() !== "|" && this.#peek() !== ")") {
      items.push(this.#quantified());
    }
    return items.length === 1 ? items[0] : { kind: "seq", items };
  }

  #quantified(): RegexNode {
    const atom = this.#atom();
    const bounds = this.#quantifier();
    if (!bounds) return atom;
    if (atom.kind === "assert") this.#fail("nothing to repeat");
    if (this.#peek() === "?") this.#pos++; // lazy: the same set of whole-string matches
    if (this.#quantifierAhead()) this.#fail("nothing to repeat");
    return { kind: "repeat", node: atom, min: bounds[0], max: bounds[1] };
  }

  #quantifierAhead(): boolean {
    const c = this.#peek();
    return c === "*" || c === "+" || c === "?" || c === "{";
  }

  #quantifier(): [number, number] | undefined {
    const c = this.#peek();
    if (c === "*" || c === "+" || c === "?") {
      this.#pos++;
      return c === "*" ? [0, Infinity] : c === "+" ? [1, Infinity] : [0, 1];
    }
    if (c !== "{") return undefined;
    const match = /^\{(\d+)(,(\d*))?\}/.exec(this.#pattern.slice(this.#offsetInString()));
    if (!match) this.#fail('incomplete quantifier (a lone "{")');
    this.#pos += match[0].length;
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === "" ? Infinity : Number(match[3]);
    if (min > max) this.#fail("numbers out of order in {} quantifier");
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) {
      this.#fail(`repetition counts above ${MAX_REPEAT} are not supported`);
    }
    return [min, max];
  }

  /** The string offset of the current code point (the pattern may hold astral characters). */
  #offsetInString(): number {
    return String.fromCodePoint(...this.#chars.slice(0, this.#pos)).length;
  }

  #atom(): RegexNode {
    const c = this.#peek()!;
    this.#pos++;
    switch (c) {
      case "(":
        return this.#group();
      case "[":
        return { kind: "char", test: this.#class() };
      case ".":
        return { kind: "char", test: not(LINE_TERMINATOR) };
      case "^":
        return { kind: "assert", at: "start" };
      case "$":
        return { kind: "assert", at: "end" };
      case "\\":
        return { kind: "char", test: this.#escape() };
      case "*":
      case "+":
      case "?":
        this.#pos--;
        return this.#fail("nothing to repeat");
      case "{":
      case "}":
      case "]":
        this.#pos--;
        return this.#fail(`lone "${c}" (escape it as "\\${c}")`);
      default: {
        const code = c.codePointAt(0)!;
        return { kind: "char", test: (x) => x === code };
      }
    }
  }

  #group(): RegexNode {
    if (this.#peek() === "?") {
      const next = this.#peek(1);
      if (next === ":") {
        this.#pos += 2;
      } else if (
        next === "=" || next === "!" || (next === "<" && /[=!]/.test(this.#peek(2) ?? ""))
      ) {
        this.#fail("lookahead and lookbehind are not supported (they need backtracking)");
      } else if (next === "<") {
        const name = /^\?<([A-Za-z_$][\w$]*)>/.exec(this.#pattern.slice(this.#offsetInString()));
        if (!name) this.#fail("invalid group name");
        this.#pos += name[0].length;
      } else {
        this.#fail("invalid group");
      }
    }
    const inner = this.#alternation();
    if (this.#peek() !== ")") this.#fail("unterminated group");
    this.#pos++;
    // Wrapped so that a group holding only ^ or $ may be repeated, as RegExp allows.
    return { kind: "seq", items: [inner] };
  }

  #class(): CharTest {
    const negated = this.#peek() === "^";
    if (negated) this.#pos++;
    const tests: CharTest[] = [];
    while (this.#peek() !== "]") {
      if (this.#pos >= this.#chars.length) this.#fail("unterminated character class");
      const from = this.#classAtom();
      if (this.#peek() === "-" && this.#peek(1) !== "]" && this.#peek(1) !== undefined) {
        this.#pos++;
        const to = this.#classAtom();
        if (typeof from !== "number" || typeof to !== "number") {
          this.#fail("a class escape cannot bound a range");
        }
        if (from > to) this.#fail("range out of order in character class");
        tests.push((x) => x >= from && x <= to);
      } else {
        tests.push(typeof from === "number" ? (x) => x === from : from);
      }
    }
    this.#pos++;
    const any: CharTest = (x) => tests.some((test) => test(x));
    return negated ? not(any) : any;
  }

  /** One class member: a code point, or a set such as `\d`. */
  #classAtom(): number | CharTest {
    const c = this.#chars[this.#pos++];
    if (c !== 0x5c) return c;
    if (this.#peek() === "b") {
      this.#pos++;
      return 8; // backspace inside a class
    }
    if (this.#peek() === "-") {
      this.#pos++;
      return 0x2d;
    }
    const single = this.#singleEscape();
    return single ?? this.#setEscape() ?? this.#fail("invalid escape");
  }

  #escape(): CharTest {
    const c = this.#peek();
    if (c === undefined) this.#fail("\\ at end of pattern");
    if (c === "b" || c === "B") this.#fail("word boundaries (\\b, \\B) are not supported");
    if (/[1-9]/.test(c) || c === "k") this.#fail("backreferences are not supported");
    const set = this.#setEscape();
    if (set) return set;
    const code = this.#singleEscape();
    if (code === undefined) this.#fail(`invalid escape "\\${c}"`);
    return (x) => x === code;
  }

  /** `\d \D \w \W \s \S`; `\p` is refused. */
  #setEscape(): CharTest | undefined {
    const c = this.#peek();
    const sets: Record<string, CharTest> = {
      d: DIGIT,
      D: not(DIGIT),
      w: WORD,
      W: not(WORD),
      s: SPACE,
      S: not(SPACE),
    };
    if (c === "p" || c === "P") this.#fail("unicode property escapes (\\p{...}) are not supported");
    if (c === undefined || !(c in sets)) return undefined;
    this.#pos++;
    return sets[c];
  }

  /** An escape naming one code point, or undefined. */
  #singleEscape(): number | undefined {
    const c = this.#peek();
    if (c === undefined) return undefined;
    const rest = this.#pattern.slice(this.#offsetInString());
    if (c in CONTROL_ESCAPES) {
      this.#pos++;
      return CONTROL_ESCAPES[c];
    }
    if (c === "0" && !/^0\d/.test(rest)) {
      this.#pos++;
      return 0;
    }
    if (c === "c" && /^c[A-Za-z]/.test(rest)) {
      this.#pos += 2;
      return rest.charCodeAt(1) % 32;
    }
    const hex = /^x([0-9A-Fa-f]{2})/.exec(rest) ?? /^u([0-9A-Fa-f]{4})/.exec(rest) ??
      /^u\{([0-9A-Fa-f]{1,6})\}/.exec(rest);
    if (hex) {
      const code = parseInt(hex[1], 16);
      if (code > 0x10ffff) this.#fail("code point out of range");
      this.#pos += hex[0].length;
      return code;
    }
    const code = c.codePointAt(0)!;
    if (SYNTAX_CHARS.has(code)) {
      this.#pos++;
      return code;
    }
    return undefined;
  }
}

/**
 * Parses an ECMAScript pattern (unicode mode) into a tree.
 *
 * @param pattern The pattern, without slashes or flags.
 * @returns Its tree.
 * @throws {SyntaxError} Naming the offset and what is wrong or unsupported.
 */
export function parseRegex(pattern: string): RegexNode {
  return new Parser(pattern).parse();
}
