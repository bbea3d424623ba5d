// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * kivebpf trap engine: reports every open (and exec) of a trapped inode.
 *
 * One object holds the programs of every backend; user space loads only the
 * programs of the backend it picked (bpf_program__set_autoload) plus the exec
 * program, which every backend uses so that exec events look the same everywhere:
 *   lsm         lsm/file_open            (can deny: TRAP_FLAG_BLOCK)
 *   fentry      fentry/security_file_open
 *   kprobe      kprobe/security_file_open
 *   tracepoint  tp_btf/sys_exit          (open-like syscalls, 64-bit and i386, fd -> file;
 *                                         trap_sys_exit on 6.2+, else trap_sys_exit_compat)
 *               tp_btf/io_uring_*        (io_uring opens; see trap_tracepoint.h)
 *   (always)    tp_btf/sched_process_exec
 *
 * Cheapest checks first: with nothing armed every program returns at once; with
 * the cgroup filter on, tasks outside the trapped cgroups cost one helper call and
 * one lookup; otherwise a file that is not a trap costs reading its (dev, ino) and
 * one hash lookup. The process context is only read on a hit.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "trap_event.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EPERM 1

/* Values from include/uapi/asm-generic/fcntl.h and include/linux/fs.h (stable ABI). */
#define KV_O_ACCMODE 00000003
#define KV_O_WRONLY 00000001
#define KV_O_RDWR 00000002
#define KV_O_APPEND 00002000
#define KV_O_PATH 010000000
#define KV_FMODE_EXEC 0x20 /* __FMODE_EXEC, set in f_flags by open_exec() */

#define PATH_MAX_DEPTH 40     /* components walked per path */
#define NAME_READ_MAX 256     /* bytes read per component (NAME_MAX + NUL) */
#define PATH_BUDGET 1024      /* bytes of data[] for the exe path, and for the cwd */
#define ARGS_MAX 2048         /* bytes of data[] for argv */
#define OFF_MASK (TRAP_DATA_SIZE / 2 - 1)

/* (dev, ino) -> trap. Sized by user space before load (maxTraps); 1 is a placeholder. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct trap_key);
	__type(value, struct trap_value);
} trap_map SEC(".maps");

/* Events to user space. Sized by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/*
 * Events that did not fit in the ring buffer: [0] all traps, [slot] one trap. A
 * plain array (one counter, not one per CPU): it is only written when an event is
 * lost, so the atomic add costs nothing on the common path. Sized by user space
 * (maxTraps + 1); 2 is a placeholder.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lost_counts SEC(".maps");

/*
 * How much of lost_counts user space has reported, per slot; written by user space
 * only. It is pinned with the rest, so an agent that adopts the maps of one that
 * died reports exactly the losses nobody reported yet. Sized like lost_counts.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lost_reported SEC(".maps");

/* Where an event is built before it is copied, at its real size, into the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trap_event);
} event_scratch SEC(".maps");

/* The key the hook saw for the learning thread's last open (see trap_config). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trap_learned);
} learn_map SEC(".maps");

/*
 * cgroup v2 ids (bpf_get_current_cgroup_id()) whose tasks are checked while
 * trap_cfg.cgroup_filter is set. Sized by user space (maxCgroups).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u8);
} trapped_cgroups SEC(".maps");

struct trap_config trap_cfg = {};

/*
 * Kernel 6.2+: turns an address into a read-only BTF pointer (the verifier inlines
 * it as a move). Weak: on older kernels it stays unresolved and only the program
 * that calls it fails to load (user space then loads trap_sys_exit_compat).
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/*
 * The checks every program makes before touching the file: true when the current
 * task cannot raise an event (nothing armed, or its cgroup is filtered out). While
 * the agent learns a key, its own thread must get through, so nothing is skipped.
 */
static __always_inline bool skip_task(void)
{
	if (trap_cfg.learn_tgid)
		return false;
	if (!trap_cfg.armed)
		return true;
	if (trap_cfg.cgroup_filter) {
		__u64 cgroup_id = bpf_get_current_cgroup_id();
		if (!bpf_map_lookup_elem(&trapped_cgroups, &cgroup_id))
			return true;
	}
	return false;
}

static __always_inline void learn(const struct trap_key *key, __u64 pid_tgid)
{
	if (trap_cfg.learn_tgid != (__u32)(pid_tgid >> 32) || trap_cfg.learn_pid != (__u32)pid_tgid)
		return;
	__u32 zero = 0;
	struct trap_learned *l = bpf_map_lookup_elem(&learn_map, &zero);
	if (!l)
		return;
	l->key = *key;
	__sync_fetch_and_add(&l->seq, 1);
}

/* A path to put into an event, and where the walk stops (the task's root). */
struct path_walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
};

/*
 * Appends the components of a path from the leaf up to the root (the task's root
 * or, failing that, the root of its mount tree), each NUL-terminated, at
 * data[base + *len], and adds their size to *len. Crosses mount points through
 * struct mount. The running length lives in the map value, not in a register, so
 * that the verifier sees every iteration alike and prunes instead of exploring
 * each possible offset.
 */
static __noinline void put_path(struct trap_event *e, __u32 base, __u16 *len,
				struct path_walk *w, __u32 trunc_bit)
{
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);

	for (int i = 0; i < PATH_MAX_DEPTH; i++) {
		if (dentry == w->root_dentry && vfsmnt == w->root_mnt)
			return;
		struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		if (dentry == mnt_root || dentry == parent) {
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (!mnt_parent || mnt_parent == mnt)
				return; /* root of the mount tree */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			vfsmnt = (void *)mnt + bpf_core_field_offset(struct mount, mnt);
			continue;
		}
		__u32 cur = *len;
		if (cur >= PATH_BUDGET) {
			e->truncated |= trunc_bit;
			return;
		}
		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		long n = bpf_probe_read_kernel_str(&e->data[(base + cur) & OFF_MASK], NAME_READ_MAX,
						   name);
		if (n <= 0)
			return;
		*len = cur + n;
		dentry = parent;
	}
	e->truncated |= trunc_bit;
}

/* Fills in the process context of the current task and sends the event. */
static __noinline void report(struct trap_event *e, const struct trap_value *tv_copy)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct dentry *root_dentry = BPF_CORE_READ(fs, root.dentry);
	struct vfsmount *root_mnt = BPF_CORE_READ(fs, root.mnt);
	e->ptgid = BPF_CORE_READ(task, real_parent, tgid);
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	if (mm) {
		struct file *exe = BPF_CORE_READ(mm, exe_file);
		if (exe) {
			struct path_walk w = {
				.dentry = BPF_CORE_READ(exe, f_path.dentry),
				.vfsmnt = BPF_CORE_READ(exe, f_path.mnt),
				.root_dentry = root_dentry,
				.root_mnt = root_mnt,
			};
			put_path(e, 0, &e->exe_len, &w, TRAP_TRUNC_EXE);
		}
		unsigned long start = BPF_CORE_READ(mm, arg_start);
		unsigned long stop = BPF_CORE_READ(mm, arg_end);
		unsigned long len = stop > start ? stop - start : 0;
		if (len > ARGS_MAX) {
			len = ARGS_MAX;
			e->truncated |= TRAP_TRUNC_ARGS;
		}
		__u32 at = e->exe_len;
		if (len && bpf_probe_read_user(&e->data[at & OFF_MASK], len, (void *)start) == 0)
			e->args_len = len;
		else if (len)
			e->truncated |= TRAP_TRUNC_ARGS;
	}

	if (fs) {
		struct path_walk w = {
			.dentry = BPF_CORE_READ(fs, pwd.dentry),
			.vfsmnt = BPF_CORE_READ(fs, pwd.mnt),
			.root_dentry = root_dentry,
			.root_mnt = root_mnt,
		};
		put_path(e, (__u32)e->exe_len + e->args_len, &e->cwd_len, &w, TRAP_TRUNC_CWD);
	}

	__u32 off = (__u32)e->exe_len + e->args_len + e->cwd_len;
	__u64 size = offsetof(struct trap_event, data) + ((off + 7) & ~7u);
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, 0) != 0) {
		__u32 slot = 0;
		__u64 *n = bpf_map_lookup_elem(&lost_counts, &slot);
		if (n)
			__sync_fetch_and_add(n, 1);
		slot = tv_copy->slot;
		n = bpf_map_lookup_elem(&lost_counts, &slot);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
}

/*
 * The common path of every backend, once the file's key is known. Returns -EPERM
 * when the open must be denied (lsm backend and TRAP_FLAG_BLOCK only), else 0.
 * `file` is only read on a hit (f_flags), through the probe-read helpers, so it may
 * be a BTF pointer or a plain address.
 */
static __always_inline int on_key(struct file *file, const struct trap_key *k, __u32 backend,
				  __u32 mask)
{
	struct trap_key key = *k;
	struct trap_value *tv = bpf_map_lookup_elem(&trap_map, &key);

	if (!tv) {
		if (trap_cfg.learn_tgid)
			learn(&key, bpf_get_current_pid_tgid());
		return 0;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)(pid_tgid >> 32) == trap_cfg.agent_tgid) {
		if (trap_cfg.learn_tgid)
			learn(&key, pid_tgid);
		return 0;
	}
	struct trap_value v = *tv;

	if (!mask) {
		unsigned int flags = BPF_CORE_READ(file, f_flags);
		if (flags & KV_O_PATH)
			return 0; /* no security_file_open() for O_PATH either */
		if (flags & KV_FMODE_EXEC) {
			/* reported by trap_exec after the exec, in the new program's context */
			if (!(backend == TRAP_BACKEND_LSM && (v.flags & TRAP_FLAG_BLOCK)))
				return 0;
			mask = TRAP_MAY_EXEC | TRAP_MAY_OPEN;
		} else {
			mask = TRAP_MAY_OPEN;
			switch (flags & KV_O_ACCMODE) {
			case 0:
				mask |= TRAP_MAY_READ;
				break;
			case KV_O_WRONLY:
				mask |= TRAP_MAY_WRITE;
				break;
			case KV_O_RDWR:
				mask |= TRAP_MAY_READ | TRAP_MAY_WRITE;
				break;
			}
			if (flags & KV_O_APPEND)
				mask |= TRAP_MAY_APPEND;
		}
	}

	__u32 zero = 0;
	struct trap_event *e = bpf_map_lookup_elem(&event_scratch, &zero);
	if (!e)
		return 0;
	__u64 uid_gid = bpf_get_current_uid_gid();
	int deny = backend == TRAP_BACKEND_LSM && (v.flags & TRAP_FLAG_BLOCK);

	e->boot_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->dev = key.dev;
	e->ino = key.ino;
	e->kind = TRAP_EVENT_KIND_ACCESS;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->mask = mask;
	e->trap_id = v.trap_id;
	e->action = deny ? TRAP_ACTION_BLOCKED : TRAP_ACTION_REPORTED;
	e->backend = backend;
	e->truncated = 0;
	e->exe_len = 0;
	e->args_len = 0;
	e->cwd_len = 0;
	e->pad = 0;
	report(e, &v);
	return deny ? -EPERM : 0;
}

/*
 * The key of a file the program got as a BTF pointer (lsm, fentry, tp_btf
 * arguments): plain loads, which the verifier turns into fault-handled loads with
 * no helper calls.
 */
static __always_inline void btf_key(struct file *file, struct trap_key *key)
{
	struct inode *inode = file->f_inode;
	key->dev = inode->i_sb->s_dev;
	key->ino = inode->i_ino;
}

/*
 * The key of a file known only by its address (kprobe argument, fd table entry):
 * one probe read per pointer followed. Returns non-zero when a read fails.
 */
static __always_inline int probe_key(struct file *file, struct trap_key *key)
{
	struct inode *inode;
	struct super_block *sb;
	unsigned int dev;
	if (bpf_core_read(&inode, sizeof(inode), &file->f_inode) || !inode)
		return -1;
	if (bpf_core_read(&key->ino, sizeof(key->ino), &inode->i_ino) ||
	    bpf_core_read(&sb, sizeof(sb), &inode->i_sb) || !sb ||
	    bpf_core_read(&dev, sizeof(dev), &sb->s_dev))
		return -1;
	key->dev = dev;
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(trap_lsm_file_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	if (skip_task())
		return 0;
	struct trap_key key;
	btf_key(file, &key);
	return on_key(file, &key, TRAP_BACKEND_LSM, 0);
}

SEC("fentry/security_file_open")
int BPF_PROG(trap_fentry_file_open, struct file *file)
{
	if (skip_task())
		return 0;
	struct trap_key key;
	btf_key(file, &key);
	on_key(file, &key, TRAP_BACKEND_FENTRY, 0);
	return 0;
}

SEC("kprobe/security_file_open")
int BPF_KPROBE(trap_kprobe_file_open, struct file *file)
{
	if (skip_task())
		return 0;
	struct trap_key key;
	if (probe_key(file, &key))
		return 0;
	on_key(file, &key, TRAP_BACKEND_KPROBE, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(trap_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (skip_task())
		return 0;
	struct file *file = bprm->file;
	if (!file)
		return 0;
	struct trap_key key;
	btf_key(file, &key);
	on_key(file, &key, TRAP_BACKEND_EXEC, TRAP_MAY_EXEC | TRAP_MAY_OPEN);
	return 0;
}

/* The tracepoint backend: syscall exits and io_uring completions. */
#include "trap_tracepoint.h"
