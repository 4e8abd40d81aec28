package pid1

/*
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

// The path berth mounts this binary at in a container with init: true
// (runtime/container's initPath, as Docker's docker-init).
#define BERTH_PID1_PATH "/sbin/docker-init"

// berth_pid1_signals fills set with the signals the init waits for: all
// but those the kernel raises for a fault of the init itself, which
// must keep their default action (and SIGKILL and SIGSTOP, which no
// process can wait for).
static void berth_pid1_signals(sigset_t *set) {
	sigfillset(set);
	int faults[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS, SIGKILL, SIGSTOP};
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		sigdelset(set, faults[i]);
	}
}

// berth_pid1_status is the exit status the init reports for its child's
// wait status: the child's own, or 128 plus the signal that killed it,
// as a shell reports it.
static int berth_pid1_status(int wstatus) {
	if (WIFEXITED(wstatus)) {
		return WEXITSTATUS(wstatus);
	}
	if (WIFSIGNALED(wstatus)) {
		return 128 + WTERMSIG(wstatus);
	}
	return 1;
}

// berth_pid1_exec_status is the exit status when the command cannot be
// executed: 127 when it does not exist, 126 when it is not executable,
// as a shell reports them.
static int berth_pid1_exec_status(int err) {
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return 127;
	case EACCES:
	case ENOEXEC:
	case EISDIR:
		return 126;
	}
	return 1;
}

// berth_pid1_child runs in the child: its own process group, the
// terminal's foreground one when there is a terminal (so that Ctrl-C
// reaches the command, not the init), the signal mask the init started
// with, then the command.
static void berth_pid1_child(char **cmd, const sigset_t *mask) {
	setpgid(0, 0);
	// Every signal is still blocked here, SIGTTOU among them: a process
	// of a background group may then take the terminal.
	if (tcsetpgrp(STDIN_FILENO, getpgrp()) < 0 && errno != ENOTTY && errno != ENXIO && errno != EINVAL) {
		fprintf(stderr, "docker-init: giving the terminal to %s: %s\n", cmd[0], strerror(errno));
	}
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvp(cmd[0], cmd);
	int err = errno;
	fprintf(stderr, "docker-init: exec %s: %s\n", cmd[0], strerror(err));
	_exit(berth_pid1_exec_status(err));
}

// berth_pid1_run is the init: it starts cmd, passes it every signal it
// receives, reaps every child (orphans are reparented to it), and exits
// with the command's status when the command exits.
static int berth_pid1_run(char **cmd) {
	if (getpid() != 1) {
		// Not the container's PID 1 (its PID namespace is shared):
		// orphans of the command are still reparented here.
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	}
	sigset_t set, mask;
	berth_pid1_signals(&set);
	if (sigprocmask(SIG_BLOCK, &set, &mask) < 0) {
		perror("docker-init: blocking signals");
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("docker-init: fork");
		return 1;
	}
	if (child == 0) {
		berth_pid1_child(cmd, &mask);
	}
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&set, &info);
		if (sig < 0) {
			continue; // EINTR
		}
		if (sig != SIGCHLD) {
			if (kill(child, sig) < 0 && errno != ESRCH) {
				fprintf(stderr, "docker-init: passing signal %d to %d: %s\n", sig, child, strerror(errno));
			}
			continue;
		}
		// Signals of one kind merge while pending: reap every child
		// that has exited, not one per SIGCHLD.
		for (;;) {
			int wstatus;
			pid_t pid = waitpid(-1, &wstatus, WNOHANG);
			if (pid <= 0) {
				break;
			}
			if (pid == child) {
				return berth_pid1_status(wstatus);
			}
		}
	}
}

// berth_pid1_args returns the arguments in buf (n bytes, each ending
// with a NUL, as /proc/self/cmdline holds them) as an argv, NULL at its
// end, and their number in *argc; NULL when out of memory.
static char **berth_pid1_args(char *buf, size_t n, int *argc) {
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		count += buf[i] == 0;
	}
	char **argv = calloc(count + 1, sizeof(char *));
	if (argv == NULL) {
		return NULL;
	}
	*argc = 0;
	for (size_t i = 0; i < n && (size_t)*argc < count; i += strlen(buf + i) + 1) {
		argv[(*argc)++] = buf + i;
	}
	return argv;
}

// berth_pid1_read returns the whole content of the file at path, with a
// NUL after it, and its size in *n; NULL on an error.
static char *berth_pid1_read(const char *path, size_t *n) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return NULL;
	}
	size_t size = 4096;
	char *buf = malloc(size);
	*n = 0;
	while (buf != NULL) {
		if (*n + 1 == size) {
			char *bigger = realloc(buf, size * 2);
			if (bigger == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = bigger;
			size *= 2;
		}
		ssize_t r = read(fd, buf + *n, size - 1 - *n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			free(buf);
			buf = NULL;
			break;
		}
		if (r == 0) {
			buf[*n] = 0;
			break;
		}
		*n += (size_t)r;
	}
	close(fd);
	return buf;
}

// berth_pid1_stack_args finds the arguments where the kernel put them,
// on the initial stack (the System V ABI): argc, then argv's pointers,
// then NULL, then the environment's, where the C library's environ
// points; and argv[0] is program_invocation_name. It returns argv and
// their number in *argc, or NULL when the stack does not look so (then
// /proc/self/cmdline tells).
static char **berth_pid1_stack_args(int *argc) {
	char **p = environ - 1;
	if (environ == NULL || *p != NULL) {
		return NULL;
	}
	// The arguments are above this function's frame: never look below it.
	char *floor = (char *)&p;
	for (long n = 1; (char *)(p - 2) > floor; n++) {
		p--;
		if (*p == program_invocation_name) {
			if ((long)p[-1] != n) {
				return NULL;
			}
			*argc = (int)n;
			return p;
		}
	}
	return NULL;
}

// berth_pid1_cmd returns the command in the init's arguments (after its
// path and an optional "--"), or NULL when there is none.
static char **berth_pid1_cmd(int argc, char **argv) {
	int i = 1;
	if (i < argc && strcmp(argv[i], "--") == 0) {
		i++;
	}
	return i < argc ? argv + i : NULL;
}

// Before the C library's other constructors and before the Go runtime:
// the init never starts either. The C library sets
// program_invocation_name (argv[0]) before it runs constructors, which
// makes the check cheap for every other start of the binary.
__attribute__((constructor(101))) static void berth_pid1_init(void) {
	if (program_invocation_name == NULL || strcmp(program_invocation_name, BERTH_PID1_PATH) != 0) {
		return;
	}
	// The arguments, which musl does not pass to constructors.
	int argc;
	char **argv = berth_pid1_stack_args(&argc);
	if (argv == NULL) {
		size_t n;
		char *buf = berth_pid1_read("/proc/self/cmdline", &n);
		argv = buf == NULL ? NULL : berth_pid1_args(buf, n, &argc);
	}
	if (argv == NULL) {
		perror("docker-init: reading its arguments");
		_exit(1);
	}
	char **cmd = berth_pid1_cmd(argc, argv);
	if (cmd == NULL) {
		fprintf(stderr, "usage: %s -- COMMAND [ARG...]\n", BERTH_PID1_PATH);
		_exit(1);
	}
	_exit(berth_pid1_run(cmd));
}
*/
import "C"

// exitStatus is berth_pid1_status, for the tests.
func exitStatus(wstatus int) int { return int(C.berth_pid1_status(C.int(wstatus))) }

// execStatus is berth_pid1_exec_status, for the tests.
func execStatus(errno int) int { return int(C.berth_pid1_exec_status(C.int(errno))) }
