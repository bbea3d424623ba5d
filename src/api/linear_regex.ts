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
import type { RegexNode } from "./regex_parse.ts";

export { MAX_REPEAT, parseRegex, type RegexNode } from "./regex_parse.ts";

/** Largest automaton accepted, in instructions; bounds the cost of one test. */
export const MAX_PROGRAM = 20_000;

type Instruction =
  | { op: "char"; test: (codePoint: number) => boolean }
  | { op: "split"; a: number; b: number }
  | { op: "jmp"; to: number }
  | { op: "assert"; at: "start" | "end" }
  | { op: "match" };

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
