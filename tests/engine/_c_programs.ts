/**
 * The small C programs the engine tests run, in one place so that `_prebuild.ts` can compile
 * them on the host before the VM kernel matrix (the VM has no compiler).
 *
 * @module
 */

/** Exits at once: the exec-of-a-trap test execs a copy of it. */
export const NOOP_C = "int main(void) { return 0; }\n";

/** Reads a file from several threads. */
export const THREADS_C = `
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *path;
static pthread_barrier_t barrier;
static int tids[64];

static void *reader(void *arg) {
  long i = (long)arg;
  tids[i] = (int)syscall(SYS_gettid);
  pthread_barrier_wait(&barrier); /* all threads alive at once: distinct tids */
  char c;
  int fd = open(path, O_RDONLY);
  if (fd < 0 || read(fd, &c, 1) != 1) exit(2);
  close(fd);
  pthread_barrier_wait(&barrier);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) return 1;
  path = argv[1];
  long n = atol(argv[2]);
  if (n < 1 || n > 64) return 1;
  pthread_t t[64];
  pthread_barrier_init(&barrier, NULL, n);
  for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, reader, (void *)i);
  for (long i = 0; i < n; i++) pthread_join(t[i], NULL);
  for (long i = 0; i < n; i++) printf("%d\\n", tids[i]);
  return 0;
}
`;

/** Opens and closes a file in a loop (the flood test). */
export const OPENER_C = `
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) return 1;
  long n = atol(argv[2]);
  for (long i = 0; i < n; i++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 2;
    close(fd);
  }
  return 0;
}
`;
