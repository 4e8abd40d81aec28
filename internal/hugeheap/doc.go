// Package hugeheap asks Linux for transparent huge pages for the heap and
// the code of every berth process but the supervisor: import it, blank, from main
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
// The code: every container start executes the binary again
// (libcontainer's init), and that process faulted in ~200 pages of the
// binary's code and read-only data, ~4 ms there. When the page cache
// holds the binary in 2 MiB folios, the kernel maps them with one entry
// per 2 MiB instead (ext4 and XFS cache files in large folios, and
// mapping one needs no advice), and `up -d` of 50 services took 5% less
// time and CPU (bench/README.md, session 13). Which folios the cache
// holds depends on how the file was first read or written. A C
// constructor here advises MADV_HUGEPAGE on the binary's read-only
// segments before the Go runtime starts: when the binary is not cached
// yet, the kernel then reads the rest of it in 2 MiB folios. It can only
// help on a cold cache, and only as far as the kernel's read-ahead of the
// first faults (before the constructor) left chunks untouched: with
// 128 KiB read-ahead, 10 of the 18 MiB came in 2 MiB folios; with 8 MiB
// (berth's build machines) none. So the build writes the binary in
// 2 MiB writes (the Makefile's build target, tests/berthbin), which
// leaves it cached in 2 MiB folios until the cache drops it. Container
// inits do not depend on that: they run from the supervisor's copy of
// the binary, which a tmpfs keeps in 2 MiB pages (internal/hugeexe).
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
// The runtime's metadata is not on the heap: it comes from small mappings
// of its own (persistentalloc's 256 KiB chunks, which hold its span sets,
// spans and itabs; 64 KiB arenas of mark bits), which it fills page by
// page, ~100 page faults per process. The mmap below populates such
// small private anonymous writable mappings (MAP_POPULATE): one system
// call instead of those faults. `berth version` faulted 180 times instead
// of 284 and took 8% less CPU, up -d of 50 services 4% less time and CPU
// (bench/README.md, session 15), for ~1 MiB more resident memory.
//
// Cost: memory. A heap rounded up to 2 MiB pages is a few MiB larger
// (`berth version`: 23 MiB resident instead of 18). Commands and
// container inits are short-lived (an init's memory goes when it execs
// the container's process); the supervisor, which lives as long as the
// project and must stay small, is left out (`berth supervise`). Setting
// BERTH_HUGEPAGES=0 in the environment turns it off for a process and
// the processes it starts.
package hugeheap
