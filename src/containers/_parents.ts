/**
 * Opens the directory that holds a trap file, creating missing directories (0755, owned by the
 * container's root) when the trap asks for it, each resolved again from the container's root
 * so that symlinks keep the container's meaning. Private to src/containers/.
 *
 * @module
 */
import { cString, E, errno, libc, O } from "./_libc.ts";
import {
  classify,
  fail,
  type Failure,
  type FdSet,
  isFailure,
  openat2,
  RESOLVE_ONE,
  RESOLVE_ROOT,
} from "./_fs.ts";
import type { IdPlan } from "./_id_map.ts";

/** Opens (creating with 0755 when asked) the directory that holds the trap. */
export function openParent(
  fds: FdSet,
  root: number,
  dirs: string[],
  create: boolean,
  where: string,
  ids: IdPlan | undefined,
): number | Failure {
  const flags = O.O_PATH | O.O_DIRECTORY;
  const whole = openat2(root, dirs.length ? dirs.join("/") : ".", flags, RESOLVE_ROOT);
  if (whole >= 0) return fds.add(whole);
  if (-whole !== E.ENOENT) return parentProblem(-whole, where);
  if (!create) {
    return fail("FileMissing", `Trap file ${where} does not exist (nor does its directory)`);
  }
  // Walk from the root, resolving each prefix again from the root so that symlinks keep the
  // container's meaning, and creating what is missing relative to the fd of its parent.
  let parent = root;
  for (let i = 0; i < dirs.length; i++) {
    const prefix = dirs.slice(0, i + 1).join("/");
    let fd = openat2(root, prefix, flags, RESOLVE_ROOT);
    if (fd < 0 && -fd === E.ENOENT) {
      const made = mkdir(parent, dirs[i], ids?.dir);
      if (isFailure(made)) return made;
      fd = openat2(root, prefix, flags, RESOLVE_ROOT);
      if (fd < 0 && -fd === E.ENOENT) {
        return fail(
          "Other",
          `Cannot create the directories of ${where}: "/${prefix}" exists but leads nowhere ` +
            `(a dangling symlink?)`,
        );
      }
    }
    if (fd < 0) return parentProblem(-fd, where);
    parent = fds.add(fd);
  }
  return parent;
}

function parentProblem(code: number, where: string): Failure {
  if (code === E.ELOOP) {
    return fail(
      "PathEscapesRoot",
      `Cannot open the directory of ${where}: it goes through a magic link such as ` +
        `/proc/<pid>/root, or through too many symlinks`,
      code,
    );
  }
  if (code === E.ENOTDIR) {
    return fail(
      "Other",
      `Cannot open the directory of ${where}: a component is not a directory`,
      code,
    );
  }
  return { problem: classify(code, `Cannot open the directory of ${where}`) };
}

/** mkdirat(0755) exactly, whatever the umask; an existing name is left alone. */
function mkdir(
  parent: number,
  name: string,
  owner: { uid: number; gid: number } | undefined,
): void | Failure {
  const lib = libc();
  if (lib.mkdirat(parent, cString(name), 0o755) !== 0) {
    const code = errno();
    if (code === E.EEXIST) return;
    return { problem: classify(code, `Cannot create directory "${name}"`) };
  }
  // Opened again by its single name with no symlink allowed: if the container swapped it for a
  // symlink meanwhile, we get ELOOP instead of chmod-ing the link's target.
  const fd = openat2(
    parent,
    name,
    O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW,
    RESOLVE_ONE,
  );
  if (fd < 0) return { problem: classify(-fd, `Cannot open the new directory "${name}"`) };
  try {
    if (owner && lib.fchown(fd, owner.uid, owner.gid) !== 0) {
      return { problem: classify(errno(), `Cannot chown the new directory "${name}"`) };
    }
    if (lib.fchmod(fd, 0o755) !== 0) {
      return { problem: classify(errno(), `Cannot chmod the new directory "${name}"`) };
    }
  } finally {
    lib.close(fd);
  }
}
