/**
 * Regular expressions matched in linear time, for selectors that pod authors can aim at.
 *
 * JavaScript's RegExp backtracks: `([a-z]+-?)+` against a crafted 33-character container name
 * stalled the agent's event loop for 18.5 s. Here a pattern is parsed into a tree, compiled to a
 * Thompson automaton and run by keeping the set of live states per input character (a Pike VM
 * without captures), so a test costs at most (input length + 1) x (program size) steps, whatever
 * the pattern or the name.
 *
 * The syntax is the ECMAScript one (unicode mode) minus what needs backtracking or tables we do
 * not carry: backreferences, lookahead and lookbehind, word boundaries and `\p{...}` are refused
 * with a message that says so. A supported pattern matches exactly what RegExp with the `u` flag
 * would (the tests compare them on random patterns).
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
/** Largest automaton accepted, in instructions; bounds the cost of one test. */
export const MAX_PROGRAM = 20_000;

type Instruction =
  | { op: "char"; test: (codePoint: number) => boolean }
  | { op: "split"; a: number; b: number }
  | { op: "jmp"; to: number }
  | { op: "assert"; at: "start" | "end" }
  | { op: "match" };

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

/** A compiled pattern that tests whole strings in linear time. */
export class LinearRegex {
  readonly #program: Instruction[] = [];
  readonly #seen: Uint32Array;
  #generation = 0;
  /** Steps the last {@linkcode LinearRegex.test} took (for tests of the bound). */
  lastSteps = 0;

  /**
   * @param tree The pattern's tree, from {@linkcode parseRegex} or a glob.
   * @throws {SyntaxError} When the automaton would exceed {@linkcode MAX_PROGRAM} instructions.
   */
  constructor(tree: RegexNode) {
    this.#emit(tree);
    this.#program.push({ op: "match" });
    this.#seen = new Uint32Array(this.#program.length);
  }

  /** Instructions in the automaton: one test costs at most (length + 1) times this. */
  get size(): number {
    return this.#program.length;
  }

  #push(instruction: Instruction): number {
    if (this.#program.length >= MAX_PROGRAM) {
      throw new SyntaxError(
        `the pattern is too large once its repetitions are expanded (over ${MAX_PROGRAM} steps); ` +
          "use smaller {n,m} counts",
      );
    }
    return this.#program.push(instruction) - 1;
  }

  #emit(node: RegexNode): void {
    switch (node.kind) {
      case "char":
        this.#push({ op: "char", test: node.test });
        return;
      case "assert":
        this.#push({ op: "assert", at: node.at });
        return;
      case "seq":
        for (const item of node.items) this.#emit(item);
        return;
      case "alt": {
        const jumps: number[] = [];
        node.options.forEach((option, index) => {
          const last = index === node.options.length - 1;
          const split = last ? -1 : this.#push({ op: "split", a: 0, b: 0 });
          if (split >= 0) (this.#program[split] as { a: number }).a = split + 1;
          this.#emit(option);
          if (!last) {
            jumps.push(this.#push({ op: "jmp", to: 0 }));
            (this.#program[split] as { b: number }).b = this.#program.length;
          }
        });
        for (const jump of jumps) (this.#program[jump] as { to: number }).to = this.#program.length;
        return;
      }
      case "repeat": {
        for (let i = 0; i < node.min; i++) this.#emit(node.node);
        if (node.max === Infinity) {
          const split = this.#push({ op: "split", a: 0, b: 0 });
          this.#emit(node.node);
          this.#push({ op: "jmp", to: split });
          Object.assign(this.#program[split], { a: split + 1, b: this.#program.length });
          return;
        }
        const splits: number[] = [];
        for (let i = node.min; i < node.max; i++) {
          const split = this.#push({ op: "split", a: 0, b: 0 });
          (this.#program[split] as { a: number }).a = split + 1;
          splits.push(split);
          this.#emit(node.node);
        }
        for (const split of splits) {
          (this.#program[split] as { b: number }).b = this.#program.length;
        }
      }
    }
  }

  /**
   * Tests the WHOLE string, as RegExp `^(?:pattern)$` with the `u` flag would.
   *
   * @param input The string, read as code points.
   * @returns Whether it matches.
   */
  test(input: string): boolean {
    const chars = [...input].map((c) => c.codePointAt(0)!);
    let current: number[] = [];
    this.lastSteps = 0;
    this.#nextGeneration();
    this.#addThread(current, 0, 0, chars.length);
    for (let pos = 0; pos < chars.length && current.length > 0; pos++) {
      const next: number[] = [];
      this.#nextGeneration();
      for (const pc of current) {
        const instruction = this.#program[pc];
        if (instruction.op === "char" && instruction.test(chars[pos])) {
          this.#addThread(next, pc + 1, pos + 1, chars.length);
        }
      }
      current = next;
    }
    // The loop stops early only when no state survived, so a match here is at the end.
    return current.some((pc) => this.#program[pc].op === "match");
  }

  /** Starts a new "already added" set: one per input position. */
  #nextGeneration(): void {
    if (++this.#generation === 0xffff_ffff) {
      this.#seen.fill(0);
      this.#generation = 1;
    }
  }

  /** Adds `pc` and everything reachable from it without reading a character. */
  #addThread(list: number[], start: number, pos: number, length: number): void {
    const stack = [start];
    while (stack.length > 0) {
      const pc = stack.pop()!;
      this.lastSteps++;
      if (this.#seen[pc] === this.#generation) continue;
      this.#seen[pc] = this.#generation;
      const instruction = this.#program[pc];
      switch (instruction.op) {
        case "jmp":
          stack.push(instruction.to);
          break;
        case "split":
          stack.push(instruction.b, instruction.a);
          break;
        case "assert":
          if (instruction.at === "start" ? pos === 0 : pos === length) stack.push(pc + 1);
          break;
        default:
          list.push(pc);
      }
    }
  }
}
