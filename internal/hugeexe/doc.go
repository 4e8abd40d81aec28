// Package hugeexe keeps a copy of the running berth binary on a tmpfs that
// holds files in 2 MiB pages, for the processes that execute the binary
// over and over: a project's supervisor runs from the copy, and so does
// every container's init, since libcontainer re-executes the supervisor's
// own binary (through a read-only overlayfs clone of it, which shares the
// copy's pages).
//
// Why: each init maps the binary afresh and faults in the code and
// read-only data it runs, ~180 pages when the page cache holds the binary
// in 4 KiB pages, at 15-20 µs each on virtual machines (internal/hugeheap
// says why). In 2 MiB pages that is a dozen faults, and `up -d` of 10 or
// 50 services took 9-10% less time and CPU than with the binary cached in
// 4 KiB pages (bench/README.md, session 14).
// The build writes the binary so that the page cache holds it in 2 MiB
// folios (Makefile), but only until the cache drops it: machines that
// reclaim cold page cache proactively (berth's build machines do, through
// DAMON, within minutes) read it back later in 4 KiB pages, and a reboot
// does the same. A tmpfs mounted with huge=within_size keeps a copy in
// 2 MiB pages for as long as it is mounted.
//
// Where: $BERTH_RUN/exe, a tmpfs of its own (mode 0700, room for a few
// copies), mounted by the first command that starts a supervisor. Like
// the volume store it stays mounted, and goes at reboot with the rest of
// $BERTH_RUN; unmounting it by hand is safe at any time (the running
// processes keep their copy, the next supervisor makes a new one). A copy
// is named after the binary it copies (device, inode, size, modification
// time), so a new berth binary gets a copy of its own.
//
// Lifetime of a copy: the command that starts a supervisor takes a shared
// flock(2) on the copy and hands the locked file to the supervisor, which
// keeps it open until it exits (however it exits). A copy nobody holds is
// removed by the next command that starts a supervisor: an upgraded berth
// leaves no old copies behind once the old supervisors are gone. A lock
// beside the mount ($BERTH_RUN/exe.lock) serialises mounting, copying and
// removing.
//
// Cost: one copy of the binary (~20 MiB of memory) while it is mounted,
// and ~25 ms to make it (once per binary and boot). Where transparent
// huge pages cannot be had for tmpfs (no THP, or shmem_enabled "deny"),
// or with BERTH_HUGEPAGES=0, nothing is mounted and the supervisor runs
// from the binary itself.
package hugeexe
