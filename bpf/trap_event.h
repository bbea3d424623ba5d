/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structures shared between the BPF programs (bpf/trap.bpf.c) and user space
 * (src/engine/_event.ts decodes them). Any change here must be mirrored there;
 * tests/engine/event_layout_test.ts compares both through the object's BTF.
 * Include after vmlinux.h (it provides __u8.. __u64).
 */
#ifndef KIVEBPF_TRAP_EVENT_H
#define KIVEBPF_TRAP_EVENT_H

/* Key of the trap map: the inode as the kernel sees it. */
struct trap_key {
	__u64 dev; /* inode->i_sb->s_dev, kernel encoding: major << 20 | minor */
	__u64 ino; /* inode->i_ino */
};

/* Value of the trap map. */
struct trap_value {
	__u32 trap_id; /* opaque id chosen by user space, reported in events */
	__u32 flags;   /* TRAP_FLAG_* */
	__u32 slot;    /* index into the lost-event counters (1..max_traps) */
	__u32 pad;
};

#define TRAP_FLAG_BLOCK 1u /* lsm backend only: deny the open with -EPERM */

/* Backend ids, reported in each event. */
#define TRAP_BACKEND_LSM 1
#define TRAP_BACKEND_FENTRY 2
#define TRAP_BACKEND_KPROBE 3
#define TRAP_BACKEND_TRACEPOINT 4
#define TRAP_BACKEND_EXEC 5 /* sched_process_exec, loaded with every backend */

/* The kernel's MAY_* access bits (include/linux/fs.h). */
#define TRAP_MAY_EXEC 1u
#define TRAP_MAY_WRITE 2u
#define TRAP_MAY_READ 4u
#define TRAP_MAY_APPEND 8u
#define TRAP_MAY_OPEN 32u

#define TRAP_ACTION_REPORTED 0u
#define TRAP_ACTION_BLOCKED 1u

/* trap_event.truncated bits */
#define TRAP_TRUNC_EXE 1u
#define TRAP_TRUNC_ARGS 2u
#define TRAP_TRUNC_CWD 4u

#define TRAP_COMM_LEN 16
/* Variable part: exe, args and cwd back to back. Power of two (the verifier masks offsets). */
#define TRAP_DATA_SIZE 8192
#define TRAP_EVENT_KIND_ACCESS 1

/*
 * One access to a trap. Only the header and data[0 .. exe_len + args_len + cwd_len)
 * are sent (rounded up to 8 bytes).
 * Paths (exe, cwd) are sent as their components from the leaf up to the root, each
 * terminated by a NUL byte ("secret.txt\0tmp\0"); user space reverses them. Arguments
 * are argv as in memory: NUL-separated strings.
 */
struct trap_event {
	__u64 boot_ns;   /* bpf_ktime_get_boot_ns() at the access */
	__u64 cgroup_id; /* bpf_get_current_cgroup_id() (cgroup v2) */
	__u64 dev;       /* trap_key.dev */
	__u64 ino;       /* trap_key.ino */
	__u32 kind;      /* TRAP_EVENT_KIND_* */
	__u32 pid;       /* thread id (host pid namespace) */
	__u32 tgid;      /* process id (host pid namespace) */
	__u32 ptgid;     /* real parent's process id */
	__u32 uid;
	__u32 gid;
	__u32 mnt_ns;    /* task->nsproxy->mnt_ns->ns.inum */
	__u32 mask;      /* TRAP_MAY_* */
	__u32 trap_id;
	__u32 action;    /* TRAP_ACTION_* */
	__u32 backend;   /* TRAP_BACKEND_* */
	__u32 truncated; /* TRAP_TRUNC_* */
	__u16 exe_len;   /* bytes of data[] holding the exe path components */
	__u16 args_len;  /* bytes after the exe holding argv */
	__u16 cwd_len;   /* bytes after argv holding the cwd path components */
	__u16 pad;
	char comm[TRAP_COMM_LEN];
	char data[TRAP_DATA_SIZE];
};

/*
 * Run-time settings, the single global variable of the object (its .bss map).
 * User space writes it after load and before attach, and again whenever one of
 * its fields changes (always the whole struct).
 */
struct trap_config {
	__u32 agent_tgid;    /* accesses by this process never raise events */
	__u32 learn_tgid;    /* when non-zero: record keys opened by learn_pid of this process */
	__u32 learn_pid;     /* thread whose opens are recorded in learn_map */
	__u32 armed;         /* keys in trap_map; 0: the programs return at once */
	__u32 cgroup_filter; /* non-zero: only tasks whose cgroup v2 id is in trapped_cgroups */
	__u32 pad;
};

/* learn_map value: the key seen by the hook for the learning thread's last open. */
struct trap_learned {
	struct trap_key key;
	__u64 seq; /* incremented on each record */
};

#endif /* KIVEBPF_TRAP_EVENT_H */
