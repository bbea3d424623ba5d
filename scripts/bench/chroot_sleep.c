// SPDX-License-Identifier: Apache-2.0
// M6: stand-ins for container init processes, one per pod, each with its own root.
//
//   chroot_sleep BASE N
//
// Forks N processes; process i chroots into BASE/pod-<i> and sleeps. Prints "i pid" per
// line, then waits for stdin to close and kills them all. The trap planter reaches a
// container's files through /proc/<pid>/root of its init, so these roots are where the
// agent's planting code puts the trap files.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s BASE N\n", argv[0]);
		return 1;
	}
	int n = atoi(argv[2]);
	pid_t *pids = calloc(n > 0 ? n : 1, sizeof(pid_t));
	for (int i = 0; i < n; i++) {
		char root[4096];
		snprintf(root, sizeof(root), "%s/pod-%d", argv[1], i);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			n = i;
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (chroot(root) != 0 || chdir("/") != 0) {
				perror(root);
				_exit(2);
			}
			for (;;)
				pause();
		}
		pids[i] = pid;
		printf("%d %d\n", i, pid);
	}
	fflush(stdout);
	char buf[256];
	while (read(0, buf, sizeof(buf)) > 0)
		;
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	while (wait(NULL) > 0)
		;
	return 0;
}
