// Package pid1 is the minimal init of `init: true`: PID 1 of the
// container, which starts the container's command, passes it the signals
// the container receives, reaps the orphans reparented to it, and exits
// with the command's status, as Docker's docker-init (tini) does.
//
// It is written in C and runs from a constructor, before the Go runtime
// starts, when the binary is executed as /sbin/docker-init: berth mounts
// its own binary there (runtime/container), so that `init: true` needs
// nothing installed beside berth, and a container's PID 1 costs no Go
// runtime start. Import it, blank, from every binary that starts
// containers (runtime/container/reexec does).
//
// What it does, in order: become a child subreaper when it is not PID 1
// (a shared PID namespace); block every signal but those of its own
// faults; fork the command, which takes its own process group and, when
// its standard input is a terminal, the terminal's foreground (Ctrl-C
// then reaches the command); then wait for signals. A SIGCHLD reaps every
// exited child; any other signal goes to the command. When the command
// exits, the init exits with its status (128 + the signal's number when
// a signal killed it); a command that cannot be executed gives 127 (not
// found) or 126 (not executable), as a shell does.
package pid1
