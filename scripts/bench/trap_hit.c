// SPDX-License-Identifier: Apache-2.0
// M3/M4 load: opens of a trap file.
//
//   trap_hit PATH COUNT PROCS INTERVAL_US
//
// Forks PROCS processes; each opens PATH read-only and closes it COUNT times, sleeping
// INTERVAL_US between opens (0: a flood). Prints one JSON line with the accesses made
// (successful opens, which is what the kernel hook reports):
//   {"made":1000000,"failed_procs":0,"seconds":2.41}
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s PATH COUNT PROCS INTERVAL_US\n", argv[0]);
		return 1;
	}
	const char *path = argv[1];
	long count = atol(argv[2]);
	int procs = atoi(argv[3]);
	long interval = atol(argv[4]);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int p = 0; p < procs; p++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			for (long i = 0; i < count; i++) {
				int fd = open(path, O_RDONLY);
				if (fd < 0)
					_exit(3);
				close(fd);
				if (interval > 0)
					usleep(interval);
			}
			_exit(0);
		}
	}
	int failed = 0;
	for (int p = 0; p < procs; p++) {
		int status;
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"made\":%ld,\"failed_procs\":%d,\"seconds\":%.3f}\n",
	       (long)(procs - failed) * count, failed, seconds);
	return failed ? 4 : 0;
}
