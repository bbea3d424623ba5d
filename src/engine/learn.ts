/**
 * Learning a file's key as the kernel sees it: user space opens the file once on this thread
 * while the hook records the (dev, ino) it saw for exactly this thread. stat's st_dev is not
 * always the kernel's `i_sb->s_dev` (overlayfs, btrfs subvolumes), so this is what arming a
 * path relies on.
 *
 * @module
 */
import { type BpfMap, openAndClose, threadId } from "../bpf/mod.ts";
import { decodeLearned, LAYOUTS, type TrapConfig } from "./_structs.ts";
import { writeConfig } from "./load.ts";
import type { TrapKey } from "./types.ts";

/**
 * Opens `path` once (read-only, non-blocking) on this thread while the kernel hook records
 * the (dev, ino) it sees for this thread, then turns recording off again.
 *
 * @param bss The object's `.bss` (the run-time configuration).
 * @param learnMap The hook's record.
 * @param config The configuration as last written; its learn fields are set and cleared.
 * @param path The file.
 * @returns the key the hook saw, or null if it saw none
 * @throws {BpfError} op `open` when the file cannot be opened
 */
export function learnKey(
  bss: BpfMap,
  learnMap: BpfMap,
  config: TrapConfig,
  path: string,
): TrapKey | null {
  const zero = new Uint8Array(4);
  const before = learnMap.lookup(zero);
  config.learnTgid = Deno.pid;
  config.learnPid = threadId();
  writeConfig(bss, config);
  try {
    openAndClose(path);
  } finally {
    config.learnTgid = 0;
    config.learnPid = 0;
    writeConfig(bss, config);
  }
  const after = learnMap.lookup(zero);
  if (!before || !after || after.length !== LAYOUTS.trap_learned.size) return null;
  const learned = decodeLearned(after);
  return learned.seq === decodeLearned(before).seq ? null : learned.key;
}
