/** A hook backend, in the order automatic mode tries them. */
export type Backend = "lsm" | "fentry" | "kprobe" | "tracepoint";

/** The program that reported an access: the backend's hook, or the exec hook. */
export type Hook = Backend | "exec";

/** An inode as the kernel identifies it. */
export interface TrapKey {
  /** Device in the kernel's encoding (`major << 20 | minor`), as in `inode->i_sb->s_dev`. */
  dev: number;
  /** Inode number. */
  ino: bigint;
}

/** MAY_* access bits of the kernel (include/linux/fs.h), as reported in {@linkcode AccessEvent.mask}. */
export const MAY_EXEC = 1;
/** Opened for writing. */
export const MAY_WRITE = 2;
/** Opened for reading. */
export const MAY_READ = 4;
/** Opened with O_APPEND. */
export const MAY_APPEND = 8;
/** Every open carries it. */
export const MAY_OPEN = 32;

/** One access to a trap, with the process context captured in the kernel at that moment. */
export interface AccessEvent {
  /** Discriminant. */
  kind: "access";
  /** Wall-clock time of the access, nanoseconds since the Unix epoch. */
  timeNs: bigint;
  /** CLOCK_BOOTTIME of the access (bpf_ktime_get_boot_ns). */
  bootNs: bigint;
  /** cgroup v2 id of the process. */
  cgroupId: bigint;
  /** Mount namespace inode number (as in /proc/PID/ns/mnt). */
  mntNs: number;
  /** The trapped inode's device (kernel encoding). */
  dev: number;
  /** The trapped inode. */
  ino: bigint;
  /** Thread id (host pid namespace). */
  pid: number;
  /** Process id (host pid namespace). */
  tgid: number;
  /** Parent process id. */
  ppid: number;
  /** Real user id. */
  uid: number;
  /** Real group id. */
  gid: number;
  /** Thread name (task->comm). */
  comm: string;
  /** Executable path, as seen from the process's root ("" for kernel threads). */
  exe: string;
  /** Arguments (argv). */
  args: string[];
  /** Working directory, as seen from the process's root. */
  cwd: string;
  /** MAY_* bits: open for reading = 36, exec = 33. */
  mask: number;
  /** The trap id given to arm(). */
  trapId: number;
  /** The open was denied (lsm backend, block option). */
  blocked: boolean;
  /** The program that saw it. */
  hook: Hook;
  /** Which of exe, args, cwd were cut to their size limit. */
  truncated: { exe: boolean; args: boolean; cwd: boolean };
  /**
   * Accesses this event stands for (1, or more when repeats by the same process to the
   * same trap within the aggregation window were merged into it).
   */
  count: number;
}

/** Accesses to a trap that the kernel could not send (ring buffer full) or user space dropped. */
export interface LostNotice {
  /** Discriminant. */
  kind: "lost";
  /** The trap. */
  trapId: number;
  /** Accesses lost since the previous notice for this trap. */
  count: number;
}

/** What the event stream yields. */
export type EngineEvent = AccessEvent | LostNotice;

/** Why a backend could not be used. */
export interface BackendAttempt {
  /** The backend. */
  backend: Backend;
  /** The error message (names the failing call and errno). */
  reason: string;
  /** errno of the failure, when it was a system error. */
  errno?: number;
}

/** Counters of an engine. */
export interface EngineCounters {
  /** The active backend. */
  backend: Backend;
  /** Access events delivered to the stream. */
  events: number;
  /** Accesses those events stand for (events + aggregated). */
  accesses: number;
  /** Accesses merged into an earlier event of the same process and trap. */
  aggregated: number;
  /** Accesses lost (kernel ring buffer full, or user-space queue full), all traps. */
  lost: number;
  /** Lost accesses per trap id. */
  lostByTrap: Map<number, number>;
  /**
   * Of `lost`, the accesses dropped in user space because the event queue held
   * `maxQueuedEvents` (the rest were lost in the kernel, the ring buffer being full).
   */
  lostInUserSpace: number;
  /** Armed keys. */
  armed: number;
}
