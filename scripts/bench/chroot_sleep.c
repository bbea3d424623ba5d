// SPDX-License-Identifier: Apache-2.0
// M6 and M6K: stand-ins for container init processes, one per pod, each with its own root.
//
//   chroot_sleep BASE N                 (M6)
//   chroot_sleep -c CGROOT BASE ID...   (M6K)
//
// The first form forks N processes; process i chroots into BASE/pod-<i> and sleeps. The
// second forks one process per ID; that process first writes its own pid to
// CGROOT/<ID>/cgroup.procs (so /proc/<pid>/cgroup names the id, as a runtime's container
// cgroup does, while its parent, this program, stays outside), then chroots into BASE/<ID>
// and sleeps. Both print "i pid" per line once the child is in place, then wait for stdin to
// close and kill them all. The trap planter reaches a container's files through
// /proc/<pid>/root of its init, so these roots are where the agent's planting code puts the
// trap files.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(const char *cgroup_procs, const char *root, int ready_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (cgroup_procs) {
		char pid[32];
		int len = snprintf(pid, sizeof(pid), "%d\n", getpid());
		int fd = open(cgroup_procs, O_WRONLY);
		if (fd < 0 || write(fd, pid, len) != len) {
			perror(cgroup_procs);
			_exit(2);
		}
		close(fd);
	}
	if (chroot(root) != 0 || chdir("/") != 0) {
		perror(root);
		_exit(2);
	}
	// Tell the parent the child is in its cgroup and its root.
	if (write(ready_fd, "", 1) != 1)
		_exit(2);
	close(ready_fd);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	const char *cgroot = NULL;
	const char *base;
	int n;
	char **ids = NULL;
	if (argc >= 4 && strcmp(argv[1], "-c") == 0) {
		cgroot = argv[2];
		base = argv[3];
		ids = argv + 4;
		n = argc - 4;
	} else if (argc == 3) {
		base = argv[1];
		n = atoi(argv[2]);
	} else {
		fprintf(stderr, "usage: %s BASE N | %s -c CGROOT BASE ID...\n", argv[0], argv[0]);
		return 1;
	}
	pid_t *pids = calloc(n > 0 ? n : 1, sizeof(pid_t));
	int started = 0;
	for (int i = 0; i < n; i++) {
		char root[4096], procs[4096];
		if (ids) {
			snprintf(root, sizeof(root), "%s/%s", base, ids[i]);
			snprintf(procs, sizeof(procs), "%s/%s/cgroup.procs", cgroot, ids[i]);
		} else {
			snprintf(root, sizeof(root), "%s/pod-%d", base, i);
		}
		int ready[2];
		if (pipe(ready) != 0) {
			perror("pipe");
			break;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			close(ready[0]);
			close(ready[1]);
			break;
		}
		if (pid == 0) {
			close(ready[0]);
			child(ids ? procs : NULL, root, ready[1]);
		}
		close(ready[1]);
		char byte;
		ssize_t got = read(ready[0], &byte, 1);
		close(ready[0]);
		pids[started++] = pid;
		if (got != 1) {
			fprintf(stderr, "chroot_sleep: child %d failed to start\n", i);
			break;
		}
		printf("%d %d\n", i, pid);
	}
	fflush(stdout);
	char buf[256];
	while (read(0, buf, sizeof(buf)) > 0)
		;
	for (int i = 0; i < started; i++)
		kill(pids[i], SIGKILL);
	while (wait(NULL) > 0)
		;
	return 0;
}
