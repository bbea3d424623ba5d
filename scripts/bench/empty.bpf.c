// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of M2: programs that do nothing, one on each hook a trap backend uses, so that
 * the per-call run time of the trap programs (kernel bpf_stats) can be read as a multiple of
 * what merely being attached there costs. The driver loads only the backend's program(s):
 *   tracepoint  empty_sys_exit (tp_btf/sys_exit), and filter_sys_exit, which only does the
 *               trap program's first step (return value and syscall number check)
 *   lsm         empty_lsm_file_open (lsm/file_open)
 *   fentry      empty_fentry_file_open (fentry/security_file_open)
 *   kprobe      empty_kprobe_file_open (kprobe/security_file_open)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sys_exit")
int BPF_PROG(empty_sys_exit, struct pt_regs *regs, long ret)
{
	return 0;
}

/* Mirrors the start of trap_sys_exit in bpf/trap.bpf.c; keep the two in step. */
volatile __u64 filter_hits;

SEC("tp_btf/sys_exit")
int BPF_PROG(filter_sys_exit, struct pt_regs *regs, long ret)
{
	if (ret < 0)
		return 0;
	long nr = regs->orig_ax;
	if (nr != 257 && nr != 2 && nr != 437 && nr != 85 && nr != 304)
		return 0;
	filter_hits++; /* keeps the check from being optimised away */
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(empty_lsm_file_open, struct file *file, int ret)
{
	return ret;
}

SEC("fentry/security_file_open")
int BPF_PROG(empty_fentry_file_open, struct file *file)
{
	return 0;
}

SEC("kprobe/security_file_open")
int BPF_KPROBE(empty_kprobe_file_open, struct file *file)
{
	return 0;
}
