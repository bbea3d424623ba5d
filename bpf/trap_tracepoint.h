// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tracepoint backend of the trap engine, for kernels that refuse lsm, fentry
 * and kprobes. Included at the end of trap.bpf.c: it uses that file's common path
 * (skip_task, on_key, btf_key, probe_key).
 *
 * Without a hook on security_file_open, every way of getting an open file has to
 * be caught where it ends:
 *   - open-like syscalls at tp_btf/sys_exit, both the 64-bit and the 32-bit compat
 *     entry (int $0x80, sysenter, 32-bit syscall), whose numbers differ and collide
 *     with unrelated 64-bit calls, so the task's TS_COMPAT status decides which
 *     table the number is from;
 *   - io_uring IORING_OP_OPENAT/OPENAT2, which never pass through a syscall exit,
 *     at tp_btf/io_uring_complete (the completion is posted after the file is
 *     installed, in a task that shares the submitter's file table: the submitter,
 *     its io-wq worker or its SQPOLL thread), both into the fd table and into a
 *     fixed-file slot (a direct descriptor, no fd at all);
 *   - a completion that finds the CQ ring full goes to the overflow list without
 *     io_uring_complete; tp_btf/io_uring_cqe_overflow has no request, so the fd
 *     and the fixed slot its result names are both checked, and an open into a
 *     slot it chose (result 0) is found by the slot recorded at submission.
 * Execs are caught by trap_exec (sched_process_exec) whatever the entry.
 */

/*
 * Syscall numbers differ per architecture, and so does the compat (32-bit) entry: the tables
 * below are x86's. Another target must bring its own tables and compat test, not reuse these.
 */
#if !defined(__TARGET_ARCH_x86)
#error "trap_tracepoint.h has syscall tables for x86 only: build with -D__TARGET_ARCH_x86"
#endif

/* x86_64 syscall numbers of the calls that return a new file descriptor for a path. */
#define NR_open 2
#define NR_creat 85
#define NR_openat 257
#define NR_open_by_handle_at 304
#define NR_openat2 437
/* x32 calls are the 64-bit numbers with this bit set (arch/x86/include/uapi/asm/unistd.h). */
#define KV_X32_SYSCALL_BIT 0x40000000

/* i386 numbers of the same calls (arch/x86/entry/syscalls/syscall_32.tbl, stable ABI). */
#define NR32_open 5
#define NR32_creat 8
#define NR32_open_by_handle_at 342
#define NR32_openat 295
#define NR32_openat2 437
/* thread_info.status bit set on a compat syscall entry, cleared after sys_exit. */
#define KV_TS_COMPAT 0x0002

/* io_uring opcodes that open a path (include/uapi/linux/io_uring.h, stable ABI). */
#define KV_IORING_OP_OPENAT 18
#define KV_IORING_OP_OPENAT2 28
#define KV_IORING_FILE_INDEX_ALLOC (~0U)
/* The low bits of a fixed-file entry's file_ptr are flags (FFS_*); files are 8-aligned. */
#define KV_FFS_MASK (~7UL)

/* The fixed-file table before 6.13 (an array of file_ptr, its size in the ring). */
struct io_fixed_file___old {
	unsigned long file_ptr;
} __attribute__((preserve_access_index));
struct io_file_table___old {
	struct io_fixed_file___old *files;
} __attribute__((preserve_access_index));
struct io_ring_ctx___old {
	struct io_file_table___old file_table;
	unsigned int nr_user_files;
} __attribute__((preserve_access_index));

/* An io_uring open into a slot the submitter chose, by (ring, user_data). */
struct uring_open_key {
	__u64 ring;
	__u64 user_data;
};

/* Explicit-slot opens submitted and not yet completed, for the overflow path. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct uring_open_key);
	__type(value, __u32);
} uring_open_slots SEC(".maps");

/*
 * Whether syscall number `nr` of the current task opens a path and returns an fd.
 * Every syscall exit comes here: a number in neither table returns before the task
 * is read; only those in one of them (the opens, and 64-bit fstat and lseek, which
 * share numbers with i386 open and creat) pay for the TS_COMPAT check.
 */
static __always_inline bool opens_path(long nr)
{
	nr &= ~KV_X32_SYSCALL_BIT;
	switch (nr) {
	case NR_open:
	case NR_creat:
	case NR_openat:
	case NR_open_by_handle_at:
	case NR_openat2:
	case NR32_open:
	case NR32_creat:
	case NR32_openat:
	case NR32_open_by_handle_at:
		break;
	default:
		return false;
	}
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->thread_info.status & KV_TS_COMPAT)
		return nr == NR32_openat || nr == NR32_open || nr == NR32_openat2 ||
		       nr == NR32_creat || nr == NR32_open_by_handle_at;
	return nr == NR_openat || nr == NR_open || nr == NR_openat2 || nr == NR_creat ||
	       nr == NR_open_by_handle_at;
}

/*
 * The file behind fd `fd` of the current task, or NULL. task -> files -> fdt are
 * BTF-typed: plain loads. fdt->fd is a pointer to pointers, which the verifier
 * types as a plain number, so fd[fd] takes a probe read.
 */
static __always_inline struct file *current_fd_file(long fd)
{
	if (fd < 0)
		return NULL;
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	if (!files)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if ((unsigned long)fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return file;
}

/* The file in fixed-file slot `slot` of an io_uring, or NULL; probe reads only. */
static __always_inline struct file *fixed_file(struct io_ring_ctx *ctx, __u32 slot)
{
	unsigned long ptr = 0;
	unsigned int nr = 0;
	if (!ctx)
		return NULL;
	if (bpf_core_field_exists(ctx->file_table.data)) {
		struct io_rsrc_node **nodes = NULL;
		struct io_rsrc_node *node = NULL;
		if (bpf_core_read(&nr, sizeof(nr), &ctx->file_table.data.nr) || slot >= nr ||
		    bpf_core_read(&nodes, sizeof(nodes), &ctx->file_table.data.nodes) || !nodes ||
		    bpf_probe_read_kernel(&node, sizeof(node), &nodes[slot]) || !node ||
		    bpf_core_read(&ptr, sizeof(ptr), &node->file_ptr))
			return NULL;
	} else {
		struct io_ring_ctx___old *old = (void *)ctx;
		struct io_fixed_file___old *files = NULL;
		if (bpf_core_read(&nr, sizeof(nr), &old->nr_user_files) || slot >= nr ||
		    bpf_core_read(&files, sizeof(files), &old->file_table.files) || !files ||
		    bpf_core_read(&ptr, sizeof(ptr), &files[slot].file_ptr))
			return NULL;
	}
	return (struct file *)(ptr & KV_FFS_MASK);
}

/* Reports `file` if it is a trap; probe reads, so any kernel address will do. */
static __always_inline void report_opened(struct file *file)
{
	struct trap_key key;
	if (!file || probe_key(file, &key))
		return;
	on_key(file, &key, TRAP_BACKEND_TRACEPOINT, 0);
}

/* Kernel 6.2+: the file made a BTF pointer again, the rest is plain loads. */
SEC("tp_btf/sys_exit")
int BPF_PROG(trap_sys_exit, struct pt_regs *regs, long ret)
{
	if (ret < 0 || !opens_path(regs->orig_ax) || skip_task())
		return 0;
	struct file *file = current_fd_file(ret);
	if (!file)
		return 0;
	file = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
	struct trap_key key;
	btf_key(file, &key);
	on_key(file, &key, TRAP_BACKEND_TRACEPOINT, 0);
	return 0;
}

/* Kernel 6.1: the same with probe reads from the file on. */
SEC("tp_btf/sys_exit")
int BPF_PROG(trap_sys_exit_compat, struct pt_regs *regs, long ret)
{
	if (ret < 0 || !opens_path(regs->orig_ax) || skip_task())
		return 0;
	report_opened(current_fd_file(ret));
	return 0;
}

/*
 * An io_uring request completed. Its prototype changed over time (6.1: ctx, req,
 * user_data, res, ...; later: ctx, req, cqe) but the request is the second
 * argument in all, and holds the opcode, the result and the open's slot.
 */
SEC("tp_btf/io_uring_complete")
int BPF_PROG(trap_io_uring_complete, void *ring, void *request)
{
	struct io_kiocb *req = request;
	__u8 opcode = 0;
	if (!req || bpf_core_read(&opcode, sizeof(opcode), &req->opcode))
		return 0;
	if (opcode != KV_IORING_OP_OPENAT && opcode != KV_IORING_OP_OPENAT2)
		return 0;
	int res = -1;
	if (bpf_core_read(&res, sizeof(res), &req->cqe.res) || res < 0 || skip_task())
		return 0;
	/* The op's data lives in the request's cmd area (io_kiocb_to_cmd). */
	struct io_open *open = (void *)req + bpf_core_field_offset(struct io_kiocb, cmd);
	__u32 file_slot = 0;
	if (bpf_core_read(&file_slot, sizeof(file_slot), &open->file_slot))
		return 0;
	if (!file_slot) {
		report_opened(current_fd_file(res));
		return 0;
	}
	/* file_slot is 1-based, or "allocate one" and the result is the slot. */
	struct io_ring_ctx *owner = NULL;
	if (bpf_core_read(&owner, sizeof(owner), &req->ctx))
		return 0;
	__u32 slot = file_slot;
	if (file_slot == KV_IORING_FILE_INDEX_ALLOC) {
		slot = res;
	} else {
		struct uring_open_key k = {.ring = (__u64)owner};
		bpf_core_read(&k.user_data, sizeof(k.user_data), &req->cqe.user_data);
		bpf_map_delete_elem(&uring_open_slots, &k);
		slot = file_slot - 1;
	}
	report_opened(fixed_file(owner, slot));
	return 0;
}

/*
 * A completion that did not fit in the CQ ring. There is no request here, so the
 * opcode is unknown: check both what the result would name for an open, the fd
 * and the fixed slot. Another op's result that happens to name a held trap
 * reports that trap again (it is open in this process), never a wrong file.
 */
SEC("tp_btf/io_uring_cqe_overflow")
int BPF_PROG(trap_io_uring_overflow, void *ring, __u64 user_data, __s32 res)
{
	if (res < 0 || skip_task())
		return 0;
	report_opened(current_fd_file(res));
	report_opened(fixed_file(ring, res));
	struct uring_open_key k = {.ring = (__u64)ring, .user_data = user_data};
	__u32 *slot = bpf_map_lookup_elem(&uring_open_slots, &k);
	if (slot) {
		__u32 s = *slot;
		bpf_map_delete_elem(&uring_open_slots, &k);
		report_opened(fixed_file(ring, s));
	}
	return 0;
}

/* Records an open into a slot the submitter chose (see uring_open_slots). */
static __always_inline void record_open_slot(struct io_kiocb *req)
{
	__u8 opcode = 0;
	if (!req || bpf_core_read(&opcode, sizeof(opcode), &req->opcode))
		return;
	if (opcode != KV_IORING_OP_OPENAT && opcode != KV_IORING_OP_OPENAT2)
		return;
	if (skip_task())
		return;
	struct io_open *open = (void *)req + bpf_core_field_offset(struct io_kiocb, cmd);
	__u32 file_slot = 0;
	if (bpf_core_read(&file_slot, sizeof(file_slot), &open->file_slot) || !file_slot ||
	    file_slot == KV_IORING_FILE_INDEX_ALLOC)
		return;
	struct uring_open_key k = {};
	__u32 slot = file_slot - 1;
	if (bpf_core_read(&k.ring, sizeof(k.ring), &req->ctx) ||
	    bpf_core_read(&k.user_data, sizeof(k.user_data), &req->cqe.user_data))
		return;
	bpf_map_update_elem(&uring_open_slots, &k, &slot, BPF_ANY);
}

/* The submission tracepoint, named io_uring_submit_req since 6.3 ... */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(trap_io_uring_submit, void *request)
{
	record_open_slot(request);
	return 0;
}

/* ... and io_uring_submit_sqe before; the request is the first argument in both. */
SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(trap_io_uring_submit_sqe, void *request)
{
	record_open_slot(request);
	return 0;
}
