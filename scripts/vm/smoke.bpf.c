// SPDX-License-Identifier: GPL-2.0
// Smoke object of the VM kernel matrix (scripts/vm_matrix.sh compiles it into .cache/vm/smoke/):
// one tiny program per hook backend; scripts/vm/smoke_test.ts loads only the one named by
// KIVEBPF_BACKEND, attaches it and checks that its own opens are counted.
// No kernel struct is read, so no vmlinux.h is needed.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} cfg SEC(".maps"); // [0] = tgid whose opens are counted

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} hits SEC(".maps");

static __always_inline void count(void) {
  __u32 k = 0;
  __u32 *tgid = bpf_map_lookup_elem(&cfg, &k);
  if (!tgid || (bpf_get_current_pid_tgid() >> 32) != *tgid) return;
  __u64 *v = bpf_map_lookup_elem(&hits, &k);
  if (v) __sync_fetch_and_add(v, 1);
}

SEC("lsm/file_open")
int smoke_lsm(void *ctx) {
  count();
  return 0;
}

SEC("fentry/security_file_open")
int smoke_fentry(void *ctx) {
  count();
  return 0;
}

SEC("kprobe/security_file_open")
int smoke_kprobe(void *ctx) {
  count();
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int smoke_tracepoint(void *ctx) {
  count();
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
