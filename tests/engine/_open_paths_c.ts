/**
 * One C program that opens (or executes) a file by each of the less common routes an intruder
 * would pick to slip past a syscall-based monitor: the 32-bit `int $0x80` entry from a 64-bit
 * process, io_uring in its several shapes (inline, io-wq worker, SQPOLL thread, fixed-file slot,
 * completion overflow), handles, and `/proc/self/fd` reopening. Raw syscalls only (no liburing),
 * built static so the VM kernel matrix can run it.
 *
 * Usage: `open-paths TECHNIQUE PATH`. Exit 0 after the open succeeded and one byte was read
 * (`*-exec` techniques exec PATH instead); exit 3 when the kernel lacks the entry point
 * (ENOSYS: no IA32 emulation), other codes on failure with a message on stderr.
 *
 * @module
 */

/** Every technique the program knows, in the order the evasion table lists them. */
export const OPEN_PATH_TECHNIQUES = [
  "int80-open",
  "int80-openat",
  "int80-creat",
  "int80-openat2",
  "int80-open-by-handle",
  "int80-execve",
  "handle",
  "proc-fd-reopen",
  "execveat",
  "uring-openat",
  "uring-openat2",
  "uring-openat-async",
  "uring-openat-sqpoll",
  "uring-openat-fixed",
  "uring-openat-fixed-alloc",
  "uring-openat-overflow",
  "uring-openat-fixed-overflow",
] as const;

/** A technique of {@linkcode OPEN_PATH_TECHNIQUES}. */
export type OpenPathTechnique = typeof OPEN_PATH_TECHNIQUES[number];

/** The program's source. */
export const OPEN_PATHS_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl). */
#define NR32_read 3
#define NR32_open 5
#define NR32_close 6
#define NR32_creat 8
#define NR32_execve 11
#define NR32_openat 295
#define NR32_open_by_handle_at 342
#define NR32_openat2 437

static void die(const char *what, long err) {
  fprintf(stderr, "%s: %s\n", what, strerror((int)err));
  exit(err == ENOSYS ? 3 : 2);
}

/* The compat entry from a 64-bit process; r8-r11 are clobbered by it. */
static long int80(long nr, long a, long b, long c, long d) {
  long ret;
  __asm__ volatile("int $0x80"
                   : "=a"(ret)
                   : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d)
                   : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

/* Memory below 4 GiB: the compat entry takes 32-bit pointers. */
static char *low;
static long low_copy(const void *src, size_t n, size_t at) {
  memcpy(low + at, src, n);
  return (long)(unsigned long)(low + at);
}

static void read_one(int fd, const char *what) {
  char c;
  if (read(fd, &c, 1) < 0) die(what, errno);
}

static void int80_read_close(long fd, const char *what) {
  if (fd < 0) die(what, -fd);
  long n = int80(NR32_read, fd, (long)(unsigned long)(low + 4000), 1, 0);
  if (n < 0) die("int80 read", -n);
  int80(NR32_close, fd, 0, 0, 0);
}

static struct file_handle *handle_of(const char *path, int *mount_fd) {
  struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
  h->handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  if (name_to_handle_at(AT_FDCWD, path, h, &mount_id, 0) < 0) die("name_to_handle_at", errno);
  /* Any fd on the same mount will do: the file's directory. */
  char dir[2048];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir) slash[1] = 0;
  else if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  *mount_fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (*mount_fd < 0) die("open the file's directory", errno);
  return h;
}

struct ring {
  int fd;
  unsigned *sq_tail, *sq_mask, *sq_array, *sq_flags;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  unsigned pending;
};

static void ring_init(struct ring *r, unsigned entries, unsigned flags) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = flags;
  p.sq_thread_idle = 2000;
  r->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
  if (r->fd < 0) die("io_uring_setup", errno);
  size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  char *sq = mmap(0, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                  IORING_OFF_SQ_RING);
  char *cq = mmap(0, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                  IORING_OFF_CQ_RING);
  r->sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED) die("mmap ring", errno);
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)(sq + p.sq_off.array);
  r->sq_flags = (unsigned *)(sq + p.sq_off.flags);
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  r->pending = 0;
}

/* The next free SQE, zeroed; published by ring_submit. */
static struct io_uring_sqe *ring_sqe(struct ring *r) {
  unsigned idx = (*r->sq_tail + r->pending) & *r->sq_mask;
  r->sq_array[idx] = idx;
  r->pending++;
  memset(&r->sqes[idx], 0, sizeof r->sqes[idx]);
  return &r->sqes[idx];
}

static void ring_submit(struct ring *r) {
  unsigned n = r->pending;
  __atomic_store_n(r->sq_tail, *r->sq_tail + n, __ATOMIC_RELEASE);
  r->pending = 0;
  unsigned flags = 0;
  if (__atomic_load_n(r->sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP)
    flags |= IORING_ENTER_SQ_WAKEUP;
  if (syscall(__NR_io_uring_enter, r->fd, n, 0, flags, NULL, 0) < 0) die("io_uring_enter", errno);
}

/* Waits for and consumes one completion. */
static struct io_uring_cqe ring_wait(struct ring *r) {
  for (;;) {
    unsigned head = *r->cq_head;
    if (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
      struct io_uring_cqe cqe = r->cqes[head & *r->cq_mask];
      __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
      return cqe;
    }
    if (syscall(__NR_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
      die("io_uring_enter wait", errno);
  }
}

#define OPEN_TAG 42

static struct open_how how = {.flags = O_RDONLY};

static void prep_open(struct io_uring_sqe *s, const char *path, int openat2) {
  s->opcode = openat2 ? IORING_OP_OPENAT2 : IORING_OP_OPENAT;
  s->fd = AT_FDCWD;
  s->addr = (unsigned long)path;
  if (openat2) {
    s->len = sizeof how;
    s->off = (unsigned long)&how;
  } else {
    s->open_flags = O_RDONLY;
  }
}

/* Reads one byte from fixed slot 'slot' through io_uring (no fd exists for it). */
static void uring_read_fixed(struct ring *r, int slot) {
  static char c;
  struct io_uring_sqe *s = ring_sqe(r);
  s->opcode = IORING_OP_READ;
  s->flags = IOSQE_FIXED_FILE;
  s->fd = slot;
  s->addr = (unsigned long)&c;
  s->len = 1;
  ring_submit(r);
  struct io_uring_cqe cqe = ring_wait(r);
  if (cqe.res < 0) die("io_uring fixed read", -cqe.res);
}

static int uring(const char *t, const char *path) {
  struct ring r;
  int slot2 = !strcmp(t, "uring-openat-fixed") || !strcmp(t, "uring-openat-fixed-overflow");
  int fixed = slot2 || !strcmp(t, "uring-openat-fixed-alloc");
  int overflow = !strcmp(t, "uring-openat-overflow") || !strcmp(t, "uring-openat-fixed-overflow");
  ring_init(&r, 4, !strcmp(t, "uring-openat-sqpoll") ? IORING_SETUP_SQPOLL : 0);
  if (fixed) {
    int sparse[4] = {-1, -1, -1, -1};
    if (syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_FILES, sparse, 4) < 0)
      die("IORING_REGISTER_FILES", errno);
  }
  if (overflow) {
    /* Fill the CQ ring (twice the SQ size) with unreaped NOPs so that the open's completion
     * goes to the overflow list instead of the ring. */
    for (int i = 0; i < 8; i++) {
      ring_sqe(&r)->opcode = IORING_OP_NOP;
      ring_submit(&r);
    }
  }
  struct io_uring_sqe *s = ring_sqe(&r);
  prep_open(s, path, !strcmp(t, "uring-openat2"));
  s->user_data = OPEN_TAG;
  if (!strcmp(t, "uring-openat-async")) s->flags |= IOSQE_ASYNC;
  if (slot2) s->file_index = 3; /* slot 2 */
  if (!strcmp(t, "uring-openat-fixed-alloc")) s->file_index = IORING_FILE_INDEX_ALLOC;
  ring_submit(&r);
  struct io_uring_cqe cqe;
  do cqe = ring_wait(&r); /* the NOPs, if any, come first */
  while (cqe.user_data != OPEN_TAG);
  if (cqe.res < 0) die(t, -cqe.res);
  if (slot2) uring_read_fixed(&r, 2);
  else if (fixed) uring_read_fixed(&r, cqe.res);
  else read_one(cqe.res, t);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) return 1;
  const char *t = argv[1], *path = argv[2];
  size_t len = strlen(path) + 1;
  if (len > 2048) return 1;
  low = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
  if (low == MAP_FAILED) die("mmap MAP_32BIT", errno);
  long p32 = low_copy(path, len, 0);

  if (!strcmp(t, "int80-open")) {
    int80_read_close(int80(NR32_open, p32, O_RDONLY, 0, 0), t);
  } else if (!strcmp(t, "int80-openat")) {
    int80_read_close(int80(NR32_openat, AT_FDCWD, p32, O_RDONLY, 0), t);
  } else if (!strcmp(t, "int80-creat")) {
    long fd = int80(NR32_creat, p32, 0644, 0, 0);
    if (fd < 0) die(t, -fd);
    int80(NR32_close, fd, 0, 0, 0);
  } else if (!strcmp(t, "int80-openat2")) {
    long h32 = low_copy(&how, sizeof how, 2048);
    int80_read_close(int80(NR32_openat2, AT_FDCWD, p32, h32, sizeof how), t);
  } else if (!strcmp(t, "int80-open-by-handle")) {
    int mount_fd;
    struct file_handle *h = handle_of(path, &mount_fd);
    long h32 = low_copy(h, sizeof(*h) + h->handle_bytes, 2048);
    int80_read_close(int80(NR32_open_by_handle_at, mount_fd, h32, O_RDONLY, 0), t);
  } else if (!strcmp(t, "int80-execve")) {
    unsigned argv32[2] = {(unsigned)p32, 0};
    long a32 = low_copy(argv32, sizeof argv32, 3072);
    long envp32 = a32 + 4; /* the NULL */
    long ret = int80(NR32_execve, p32, a32, envp32, 0);
    die(t, -ret);
  } else if (!strcmp(t, "handle")) {
    int mount_fd;
    struct file_handle *h = handle_of(path, &mount_fd);
    int fd = open_by_handle_at(mount_fd, h, O_RDONLY);
    if (fd < 0) die(t, errno);
    read_one(fd, t);
  } else if (!strcmp(t, "proc-fd-reopen")) {
    int opath = open(path, O_PATH); /* O_PATH opens are not opens of the file */
    if (opath < 0) die("open O_PATH", errno);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", opath);
    int fd = open(proc, O_RDONLY);
    if (fd < 0) die(t, errno);
    read_one(fd, t);
  } else if (!strcmp(t, "execveat")) {
    int opath = open(path, O_PATH);
    if (opath < 0) die("open O_PATH", errno);
    char *args[] = {(char *)path, NULL}, *env[] = {NULL};
    syscall(__NR_execveat, opath, "", args, env, AT_EMPTY_PATH);
    die(t, errno);
  } else if (!strncmp(t, "uring-", 6)) {
    return uring(t, path);
  } else {
    fprintf(stderr, "unknown technique %s\n", t);
    return 1;
  }
  return 0;
}
`;
