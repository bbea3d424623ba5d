/**
 * Real containers for the tests: runc (Debian's `runc`) running a busybox-static rootfs built in
 * a temporary directory. Needs root.
 *
 * @module
 */

const BUSYBOX = "/usr/bin/busybox"; // Debian's busybox-static
const APPLETS = [
  "sh",
  "sleep",
  "stat",
  "ln",
  "cat",
  "mkdir",
  "ls",
  "readlink",
  "touch",
  "chmod",
  "rm",
  "mv",
  "chown",
];

/** Output of a command. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and returns its output. */
export async function run(command: string, args: string[]): Promise<Output> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Runs a command and returns its stdout, failing with its stderr. */
export async function check(command: string, args: string[]): Promise<string> {
  const out = await run(command, args);
  if (out.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${out.code}: ${out.stderr.trim()}`);
  }
  return out.stdout;
}

/** A random lowercase hex string of `bytes` bytes. */
export function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** How to start a container. */
export interface StartOptions {
  /**
   * Run in a user namespace whose ids 0-65535 are host ids 100000-165535 (the rootfs is
   * chowned to match, as an image unpacked for such a container would be).
   */
  userns?: boolean;
  /** Host directories bind-mounted into the container: container path -> host path. */
  binds?: Record<string, string>;
}

/** The host id of the container's root in a {@linkcode StartOptions.userns} container. */
export const USERNS_BASE = 100000;

/** A detached runc container running `sleep 3600`, deleted on dispose. */
export class RuncContainer implements AsyncDisposable {
  /** A 64-hex id, like the ids containerd and CRI-O give containers. */
  readonly id: string;
  /** The bundle directory (config.json and rootfs/). */
  readonly bundle: string;
  /** The init's pid, from `runc state`. */
  pid = 0;
  #deleted = false;

  private constructor(id: string, bundle: string) {
    this.id = id;
    this.bundle = bundle;
  }

  /** The rootfs directory on the host. */
  get rootfs(): string {
    return `${this.bundle}/rootfs`;
  }

  /** Builds a busybox rootfs, starts the container and reads its pid. */
  static async start(options: StartOptions = {}): Promise<RuncContainer> {
    const bundle = await Deno.makeTempDir({ prefix: "kivebpf-runc-" });
    const container = new RuncContainer(randomHex(32), bundle);
    try {
      await container.#create(options);
      return container;
    } catch (error) {
      await container[Symbol.asyncDispose]();
      throw error;
    }
  }

  async #create(options: StartOptions): Promise<void> {
    const rootfs = this.rootfs;
    for (const dir of ["bin", "tmp", "etc"]) {
      await Deno.mkdir(`${rootfs}/${dir}`, { recursive: true });
    }
    await Deno.copyFile(BUSYBOX, `${rootfs}/bin/busybox`);
    await Deno.chmod(`${rootfs}/bin/busybox`, 0o755);
    for (const applet of APPLETS) await Deno.symlink("busybox", `${rootfs}/bin/${applet}`);
    const rootless = options.userns ? ["--rootless"] : [];
    await check("runc", ["spec", ...rootless, "--bundle", this.bundle]);
    const configPath = `${this.bundle}/config.json`;
    const config = JSON.parse(await Deno.readTextFile(configPath));
    if (options.userns) {
      const mapping = [{ containerID: 0, hostID: USERNS_BASE, size: 65536 }];
      config.linux.uidMappings = mapping;
      config.linux.gidMappings = mapping;
      await check("chown", ["-R", "-h", `${USERNS_BASE}:${USERNS_BASE}`, rootfs]);
      await Deno.chmod(this.bundle, 0o755); // the container's root must reach its rootfs
    }
    config.process.terminal = false;
    config.process.args = ["sleep", "3600"];
    config.root = { path: rootfs, readonly: false };
    for (const [destination, source] of Object.entries(options.binds ?? {})) {
      config.mounts.push({ destination, source, type: "bind", options: ["rbind", "rw"] });
    }
    await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2));
    // Detached: the container inherits runc's stdio, so it must not be a pipe we wait on.
    const log = `${this.bundle}/runc.log`;
    const { code } = await new Deno.Command("runc", {
      args: ["--log", log, "run", "--detach", "--bundle", this.bundle, this.id],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    if (code !== 0) {
      const text = await Deno.readTextFile(log).catch(() => "");
      throw new Error(`runc run ${this.id} exited ${code}: ${text.trim()}`);
    }
    this.pid = (await this.state()).pid;
  }

  /** `runc state`. */
  async state(): Promise<{ pid: number; status: string }> {
    return JSON.parse(await check("runc", ["state", this.id]));
  }

  /** Runs a command inside the container and returns its output. */
  exec(args: string[]): Promise<Output> {
    return run("runc", ["exec", this.id, ...args]);
  }

  /** Runs a command inside the container, failing on a non-zero exit. */
  async execOk(args: string[]): Promise<string> {
    const out = await this.exec(args);
    if (out.code !== 0) {
      throw new Error(`runc exec ${args.join(" ")} exited ${out.code}: ${out.stderr.trim()}`);
    }
    return out.stdout;
  }

  /** Starts a second, detached process in the container (`runc exec --detach`). */
  async execDetached(args: string[]): Promise<void> {
    const { code } = await new Deno.Command("runc", {
      args: ["exec", "--detach", this.id, ...args],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    if (code !== 0) throw new Error(`runc exec --detach ${args.join(" ")} exited ${code}`);
  }

  /** Kills and deletes the container (idempotent), keeping the bundle. */
  async delete(): Promise<void> {
    if (this.#deleted) return;
    this.#deleted = true;
    await run("runc", ["delete", "--force", this.id]);
  }

  /** Deletes the container and its bundle. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.delete();
    await Deno.remove(this.bundle, { recursive: true }).catch(() => {});
  }
}
