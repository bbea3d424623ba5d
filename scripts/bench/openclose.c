// SPDX-License-Identifier: Apache-2.0
// M1 load: open+close of files that are NOT traps, in a tight loop.
//
//   openclose DIR ITERS THREADS
//
// Thread i opens DIR/nt-<i> read-only and closes it ITERS times (after a warm-up of
// ITERS/10), all threads released together. Each thread has its own file so that the
// figure is the hook's cost, not contention on one dentry. Prints one JSON line:
//   {"threads":2,"iters":300000,"ns_per_op":3312.5}
// where ns_per_op is wall time / ITERS (the time one thread takes per open+close).
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long iters;
static const char *dir;
static pthread_barrier_t barrier;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void loop(const char *path, long n)
{
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0) {
			perror(path);
			exit(2);
		}
		close(fd);
	}
}

static void *worker(void *arg)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/nt-%ld", dir, (long)arg);
	loop(path, iters / 10 + 1);
	pthread_barrier_wait(&barrier);
	loop(path, iters);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s DIR ITERS THREADS\n", argv[0]);
		return 1;
	}
	dir = argv[1];
	iters = atol(argv[2]);
	int threads = atoi(argv[3]);
	if (iters <= 0 || threads <= 0 || threads > 1024) {
		fprintf(stderr, "bad ITERS or THREADS\n");
		return 1;
	}
	pthread_t tid[1024];
	pthread_barrier_init(&barrier, NULL, threads + 1);
	for (long t = 0; t < threads; t++)
		pthread_create(&tid[t], NULL, worker, (void *)t);
	pthread_barrier_wait(&barrier);
	double start = now_ns();
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	double elapsed = now_ns() - start;
	printf("{\"threads\":%d,\"iters\":%ld,\"ns_per_op\":%.1f}\n", threads, iters,
	       elapsed / (double)iters);
	return 0;
}
