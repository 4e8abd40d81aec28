//go:build linux && (amd64 || arm64 || loong64 || ppc64le)

// Where the Go runtime maps its memory through the C library (runtime/cgo's
// x_cgo_mmap); elsewhere this package does nothing.

package hugeheap

/*
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

// Set before the Go runtime starts (constructors run first); 0 until then.
static int berth_huge_heap;

// berth_advise_image gives the advice in *data to the binary's read-only
// segments (code and read-only data). The program is the first object
// dl_iterate_phdr reports, in a static binary as in a dynamic one.
static int berth_advise_image(struct dl_phdr_info *info, size_t size, void *data) {
	uintptr_t page = (uintptr_t)getpagesize();
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W)) {
			continue;
		}
		uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
		uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
		madvise((void *)start, end - start, *(int *)data);
	}
	return 1;
}

// berth_supervisor reports whether this process is `berth supervise`:
// whether its first argument is "supervise". It reads the arguments from
// /proc/self/cmdline (each ends with a NUL): glibc passes argc and argv to
// constructors, musl does not (berth links with either, Makefile).
static int berth_supervisor(void) {
	char buf[4096];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return 0;
	}
	buf[n] = 0;
	size_t arg1 = strlen(buf) + 1;
	return arg1 < (size_t)n && strcmp(buf + arg1, "supervise") == 0;
}

__attribute__((constructor)) static void berth_huge_heap_init(void) {
	const char *off = getenv("BERTH_HUGEPAGES");
	if (off != NULL && strcmp(off, "0") == 0) {
		return;
	}
	if (berth_supervisor()) {
		return;
	}
	int advice = MADV_HUGEPAGE;
	dl_iterate_phdr(berth_advise_image, &advice);
	berth_huge_heap = 1;
}

// berth_mmap_flags returns the flags mmap maps with. When the process has
// huge pages (on), a small private anonymous writable mapping that the
// kernel places is populated: the Go runtime's metadata (persistentalloc's
// 256 KiB chunks, from which its span sets, spans and itabs come; 64 KiB
// mark bit arenas), which it touches page by page as it grows, and each
// first touch of a 4 KiB page is a page fault. Its reservations (no
// access) and its heap (at a fixed address) are left alone.
static int berth_mmap_flags(uintptr_t addr, size_t len, int prot, int flags, int on) {
	if (on && addr == 0 && (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE) && !(flags & MAP_FIXED) && (prot & PROT_WRITE) && len <= (256 << 10)) {
		return flags | MAP_POPULATE;
	}
	return flags;
}

// mmap replaces the C library's for this binary's own callers, the Go
// runtime among them (the C library calls its internal one).
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
	flags = berth_mmap_flags((uintptr_t)addr, len, prot, flags, berth_huge_heap);
	void *p = (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && berth_huge_heap && (flags & MAP_ANONYMOUS) && (prot & PROT_WRITE) && len >= (2 << 20)) {
		madvise(p, len, MADV_HUGEPAGE);
	}
	return p;
}
*/
import "C"

// mmapFlags is berth_mmap_flags, for the tests.
func mmapFlags(addr uintptr, length, prot, flags int, on bool) int {
	o := 0
	if on {
		o = 1
	}
	return int(C.berth_mmap_flags(C.uintptr_t(addr), C.size_t(length), C.int(prot), C.int(flags), C.int(o)))
}
