/**
 * Runs scripts/bench/agent.ts as a child process and talks to it: waits for `ready`, sends
 * commands, hands every alert line of its stdout (with the wall-clock time it was received)
 * to a callback, and samples its CPU time and memory.
 *
 * @module
 */
import { monotonicClocks } from "../../src/bpf/mod.ts";
import { REPO } from "./_build.ts";
import { type ProcSample, readProc } from "./_proc.ts";

/** One reply of the agent (`BENCH <json>` on its stderr). */
export type AgentReply = { type: string } & Record<string, unknown>;

/** Called for each alert line: the parsed `KiveAlert` and CLOCK_REALTIME at receipt (ns). */
export type AlertLineHandler = (alert: Record<string, unknown>, receivedNs: bigint) => void;

/** Options of {@linkcode AgentProcess.start}. */
export interface AgentStartOptions {
  backend: string;
  /** Extra arguments of agent.ts (`--synthetic`, `--trap-file`, `--output`, ...). */
  args: string[];
  /** Receives alert lines. */
  onAlert?: AlertLineHandler;
  /** Longest wait for `ready`, ms. Default 120 000. */
  readyTimeoutMs?: number;
}

const decoder = new TextDecoder();

/** A running bench agent. */
export class AgentProcess {
  #child: Deno.ChildProcess;
  #replies: AgentReply[] = [];
  #waiters: (() => void)[] = [];
  #stderrTail: string[] = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #pumps: Promise<void>[];
  #exited = false;
  /** The `ready` reply. */
  ready!: AgentReply;

  private constructor(child: Deno.ChildProcess, onAlert?: AlertLineHandler) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#pumps = [this.#readStdout(onAlert), this.#readStderr()];
    child.status.then(() => {
      this.#exited = true;
      this.#wake();
    });
  }

  /**
   * Starts an agent and waits until it has armed its traps.
   *
   * @param options backend, arguments, alert handler
   * @returns the running agent
   */
  static async start(options: AgentStartOptions): Promise<AgentProcess> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${REPO}scripts/bench/agent.ts`,
        "--backend",
        options.backend,
        ...options.args,
      ],
      cwd: REPO,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const agent = new AgentProcess(child, options.onAlert);
    try {
      agent.ready = await agent.next("ready", options.readyTimeoutMs ?? 120_000);
    } catch (error) {
      await agent.kill();
      throw error;
    }
    return agent;
  }

  /** The agent's pid. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Its CPU time and memory now. */
  sample(): ProcSample {
    return readProc(this.#child.pid);
  }

  async #readStdout(onAlert?: AlertLineHandler): Promise<void> {
    let rest = "";
    for await (const chunk of this.#child.stdout) {
      const receivedNs = monotonicClocks().realtimeNs;
      const text = rest + decoder.decode(chunk, { stream: true });
      const lines = text.split("\n");
      rest = lines.pop() ?? "";
      if (!onAlert) continue;
      for (const line of lines) {
        if (!line) continue;
        try {
          const parsed = JSON.parse(line) as { KiveAlert?: Record<string, unknown> };
          if (parsed.KiveAlert) onAlert(parsed.KiveAlert, receivedNs);
        } catch {
          // not an alert line
        }
      }
    }
  }

  async #readStderr(): Promise<void> {
    let rest = "";
    for await (const chunk of this.#child.stderr) {
      const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        if (line.startsWith("BENCH ")) {
          this.#replies.push(JSON.parse(line.slice(6)) as AgentReply);
          this.#wake();
        } else if (line.trim()) {
          this.#stderrTail.push(line);
          if (this.#stderrTail.length > 40) this.#stderrTail.shift();
        }
      }
    }
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /**
   * Waits for the next reply of a type (earlier replies of other types are dropped).
   *
   * @param type e.g. `ready`, `stats`
   * @param timeoutMs longest wait
   * @returns the reply
   * @throws {Error} on an `error` reply, exit or timeout, with the agent's stderr
   */
  async next(type: string, timeoutMs = 60_000): Promise<AgentReply> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const reply = this.#replies.shift();
      if (reply?.type === type) return reply;
      if (reply?.type === "error") {
        throw new Error(`The bench agent failed: ${reply.message}\n${this.#stderrTail.join("\n")}`);
      }
      if (reply) continue;
      if (this.#exited) {
        await Promise.all(this.#pumps);
        if (this.#replies.length > 0) continue;
        throw new Error(
          `The bench agent exited before "${type}":\n${this.#stderrTail.join("\n")}`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(`The bench agent did not answer "${type}" within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Sends a command and waits for its reply.
   *
   * @param command `stats`, `flush` or `quit`
   * @param type the reply's type
   * @returns the reply
   */
  async ask(command: string, type: string, timeoutMs = 60_000): Promise<AgentReply> {
    await this.#writer.write(new TextEncoder().encode(`${command}\n`));
    return await this.next(type, timeoutMs);
  }

  /** Asks the agent to close its engine and exit; returns its last counters. */
  async quit(): Promise<AgentReply> {
    try {
      const bye = await this.ask("quit", "bye", 60_000);
      await this.#writer.close().catch(() => {});
      await this.#child.status;
      await Promise.all(this.#pumps);
      return bye;
    } catch (error) {
      await this.kill();
      throw error;
    }
  }

  /** Kills the agent (only this child) and waits for it. */
  async kill(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    await this.#writer.close().catch(() => {});
    await this.#child.status;
    await Promise.allSettled(this.#pumps);
  }
}
