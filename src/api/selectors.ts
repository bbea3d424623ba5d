/**
 * Matchers for the `matchAny` selectors that need more than string equality: container names
 * (exact, `regex:` or `glob:`, always against the whole name) and pod IPs (an address or a CIDR).
 *
 * @module
 */

import { LinearRegex, parseRegex, type RegexNode } from "./linear_regex.ts";

/** Tests one name or address; built once per policy, called for every candidate. */
export type Matcher = (value: string) => boolean;

const REGEX_PREFIX = "regex:";
const GLOB_PREFIX = "glob:";

/**
 * Compiles a `containerName` selector. Pod authors choose container names, so patterns run on
 * {@linkcode LinearRegex}: linear in the name's length whatever the pattern (a backtracking
 * RegExp stalled the agent for 18.5 s on one crafted name).
 *
 * - `nginx` matches the container named exactly `nginx`;
 * - `regex:<pattern>` is an ECMAScript regular expression (unicode mode) matched against the
 *   WHOLE name, as if written `^(?:<pattern>)$`; backreferences, lookaround, `\b` and `\p{}`
 *   are refused;
 * - `glob:<pattern>` is a shell glob over the whole name: `*` any run of characters, `?` one
 *   character, `[abc]`, `[a-z]` and `[!abc]` classes, `\` escapes the next character.
 *
 * @example
 * ```ts
 * compileContainerName("glob:web-*")("web-1"); // true
 * compileContainerName("regex:db|cache")("cache"); // true
 * ```
 *
 * @param selector The selector as written in the policy.
 * @returns A matcher for container names.
 * @throws {SyntaxError} When the pattern does not compile or cannot run in linear time.
 */
export function compileContainerName(selector: string): Matcher {
  if (selector.startsWith(REGEX_PREFIX)) {
    const pattern = selector.slice(REGEX_PREFIX.length);
    let regex: LinearRegex;
    try {
      regex = new LinearRegex(parseRegex(pattern));
    } catch (error) {
      throw new SyntaxError(
        `Cannot compile regular expression "${pattern}": ${(error as Error).message}`,
        { cause: error },
      );
    }
    return (name) => regex.test(name);
  }
  if (selector.startsWith(GLOB_PREFIX)) {
    const glob = new LinearRegex(parseGlob(selector.slice(GLOB_PREFIX.length)));
    return (name) => glob.test(name);
  }
  return (name) => name === selector;
}

const ANY: RegexNode = { kind: "char", test: () => true };

/**
 * Parses a shell glob into a pattern tree for {@linkcode LinearRegex}.
 *
 * @param glob The glob, without its `glob:` prefix.
 * @returns A tree that matches whole strings only.
 * @throws {SyntaxError} On an unclosed `[` class or a trailing `\`.
 */
export function parseGlob(glob: string): RegexNode {
  const chars = [...glob];
  const items: RegexNode[] = [];
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i];
    if (char === "*") {
      items.push({ kind: "repeat", node: ANY, min: 0, max: Infinity });
    } else if (char === "?") {
      items.push(ANY);
    } else if (char === "\\") {
      if (i + 1 >= chars.length) {
        throw new SyntaxError(`Cannot compile glob "${glob}": it ends with a lone "\\"`);
      }
      items.push(literal(chars[++i]));
    } else if (char === "[") {
      const end = findClassEnd(chars, i);
      if (end < 0) {
        throw new SyntaxError(
          `Cannot compile glob "${glob}": the "[" at offset ${i} is never closed by "]"`,
        );
      }
      items.push(globClass(glob, chars.slice(i + 1, end)));
      i = end;
    } else {
      items.push(literal(char));
    }
  }
  return { kind: "seq", items };
}

function literal(char: string): RegexNode {
  const code = char.codePointAt(0)!;
  return { kind: "char", test: (c) => c === code };
}

/** A `[...]` body: `!` or `^` first negates, `a-z` ranges, every other character literal. */
function globClass(glob: string, body: string[]): RegexNode {
  const negated = body[0] === "!" || body[0] === "^";
  if (negated) body = body.slice(1);
  const ranges: [number, number][] = [];
  for (let i = 0; i < body.length; i++) {
    const from = body[i].codePointAt(0)!;
    if (body[i + 1] === "-" && i + 2 < body.length) {
      const to = body[i + 2].codePointAt(0)!;
      if (from > to) {
        throw new SyntaxError(
          `Cannot compile glob "${glob}": the range "${body[i]}-${body[i + 2]}" is out of order`,
        );
      }
      ranges.push([from, to]);
      i += 2;
    } else {
      ranges.push([from, from]);
    }
  }
  const inClass = (c: number) => ranges.some(([lo, hi]) => c >= lo && c <= hi);
  return { kind: "char", test: negated ? (c) => !inClass(c) : inClass };
}

/** Finds the `]` closing the class opened at `open`; a `]` right after `[` or `[!` is literal. */
function findClassEnd(chars: string[], open: number): number {
  let i = open + 1;
  if (chars[i] === "!" || chars[i] === "^") i++;
  if (chars[i] === "]") i++;
  for (; i < chars.length; i++) {
    if (chars[i] === "]") return i;
  }
  return -1;
}

/** An IP address as a number with its family, for prefix comparisons. */
export interface ParsedAddress {
  /** The IP version. */
  family: 4 | 6;
  /** The address bits as one unsigned number: 32 of them for IPv4, 128 for IPv6. */
  value: bigint;
}

/**
 * Parses an IPv4 or IPv6 address in its textual form.
 *
 * @param text For example `10.0.0.7` or `fd00::7`.
 * @returns The address, or `undefined` when `text` is not an address.
 */
export function parseIp(text: string): ParsedAddress | undefined {
  if (text.includes(":")) return parseIpv6(text);
  const v4 = parseIpv4(text);
  return v4 === undefined ? undefined : { family: 4, value: v4 };
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseIpv6(text: string): ParsedAddress | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string): string[] => (half === "" ? [] : half.split(":"));
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  const words: bigint[] = [];
  const pushGroups = (groups: string[], allowV4Tail: boolean): boolean => {
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i];
      if (allowV4Tail && i === groups.length - 1 && group.includes(".")) {
        const v4 = parseIpv4(group);
        if (v4 === undefined) return false;
        words.push(v4 >> 16n, v4 & 0xffffn);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(group)) {
        words.push(BigInt(parseInt(group, 16)));
      } else {
        return false;
      }
    }
    return true;
  };
  if (!pushGroups(head, halves.length === 1)) return undefined;
  const headWords = words.length;
  if (!pushGroups(tail, true)) return undefined;
  const tailWords = words.splice(headWords);
  const missing = 8 - headWords - tailWords.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  words.push(...Array<bigint>(missing).fill(0n), ...tailWords);
  return { family: 6, value: words.reduce((acc, word) => (acc << 16n) | word, 0n) };
}

/**
 * Compiles an `ip` selector: a single address (`10.1.2.3`, `fd00::3`) or a CIDR block
 * (`10.1.0.0/16`, `fd00::/64`) that pod IPs are tested against.
 *
 * @param selector The selector as written in the policy.
 * @returns A matcher for pod IP addresses.
 * @throws {SyntaxError} When `selector` is neither an address nor a CIDR block.
 */
export function compileIpSelector(selector: string): Matcher {
  const [addressText, prefixText, ...rest] = selector.split("/");
  const address = parseIp(addressText);
  const bits = address?.family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (
    address === undefined || rest.length > 0 ||
    (prefixText !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) || prefix > bits
  ) {
    throw new SyntaxError(
      `Cannot read IP selector "${selector}": write an address such as 10.0.0.7 or fd00::7, ` +
        `or a CIDR block such as 10.0.0.0/24`,
    );
  }
  const shift = BigInt(bits - prefix);
  const network = address.value >> shift;
  return (candidate) => {
    const parsed = parseIp(candidate);
    return parsed !== undefined && parsed.family === address.family &&
      (parsed.value >> shift) === network;
  };
}
