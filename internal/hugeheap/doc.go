// Package hugeheap asks Linux for transparent huge pages for the heap of
// every berth process but the supervisor: import it, blank, from main
// (runtime/container/reexec does, so container init processes and every
// test binary that starts containers have it too).
//
// Why: a process's first touch of each 4 KiB page of its heap is a page
// fault, and on virtual machines whose page tables the hypervisor
// shadows, a fault costs 15-20 µs instead of well under one (measured on
// berth's 2-core build machines: 18 µs). A berth process touches 3-5 MiB
// of heap initialising its packages before it does anything, so every
// command and every container init paid 20-25 ms of faults: a third of a
// container's start. With the heap in 2 MiB pages those faults are a
// handful, and a container runs in ~43 ms instead of ~62 (bench/README.md).
//
// How: with cgo, the Go runtime maps its memory through the C library's
// mmap (runtime/cgo's x_cgo_mmap). This package defines mmap in the
// binary, which calls the system call and then madvise(MADV_HUGEPAGE) on
// anonymous writable mappings of at least 2 MiB: the heap arenas as the
// runtime maps them. Other mappings and the C library's own are left
// alone. It only asks: with transparent huge pages set to "never" nothing
// changes, and "madvise" (the usual default) is what makes it count.
//
// Where the heap starts matters as much. Since Go 1.26 the runtime starts
// it at a random page of its first 4 MiB, so a process's first 2-3 MiB of
// heap span three 2 MiB pages about half the time instead of two, and on
// those virtual machines the first touch of a huge page costs 2-5 ms
// (the host backs it then). berth is built with that randomisation off
// (GOEXPERIMENT=norandomizedheapbase64, in the Makefile and
// tests/berthbin): `up -d` of ten services took 9% less CPU and time
// (bench/README.md, session 7). The randomisation hardens processes
// against memory-corruption bugs in linked C code; berth's C is
// libcontainer's nsenter, which reads only what its parent sends, and the
// mmap below.
//
// Cost: memory. A heap rounded up to 2 MiB pages is a few MiB larger
// (`berth version`: 23 MiB resident instead of 18). Commands and
// container inits are short-lived (an init's memory goes when it execs
// the container's process); the supervisor, which lives as long as the
// project and must stay small, is left out (`berth supervise`). Setting
// BERTH_HUGEPAGES=0 in the environment turns it off for a process and
// the processes it starts.
package hugeheap
