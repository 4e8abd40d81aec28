// Package hoststate lists what berth's containers put on the host, for
// tests that check it is all gone afterwards: mounts under some
// directories and cgroups under a cgroup parent.
package hoststate

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Of lists the mounts whose line in /proc/self/mountinfo names one of
// dirs, and the cgroups under cgroupParent in every hierarchy. The tmpfs
// with berth's copy of its binary (BERTH_RUN/exe, internal/hugeexe) is
// not listed: berth keeps it mounted, as it does its volume store.
func Of(cgroupParent string, dirs ...string) (string, error) {
	return InNamespaceOf(0, cgroupParent, dirs...)
}

// InNamespaceOf is Of for the mount namespace of process pid (0: this
// process's).
func InNamespaceOf(pid int, cgroupParent string, dirs ...string) (string, error) {
	mountinfo := "/proc/self/mountinfo"
	if pid != 0 {
		mountinfo = "/proc/" + strconv.Itoa(pid) + "/mountinfo"
	}
	mounts, err := os.ReadFile(mountinfo)
	if err != nil {
		return "", err
	}
	var out []string
	for _, l := range strings.Split(string(mounts), "\n") {
		for _, d := range dirs {
			if strings.Contains(l, d) {
				if f := strings.Fields(l); len(f) < 5 || f[4] != Exe(d) {
					out = append(out, l)
				}
				break
			}
		}
	}
	for _, parent := range CgroupDirs(cgroupParent) {
		children, _ := os.ReadDir(parent)
		for _, c := range children {
			if c.IsDir() {
				out = append(out, filepath.Join(parent, c.Name()))
			}
		}
	}
	return strings.Join(out, "\n"), nil
}

// Exe is where berth mounts the tmpfs with its copy of its binary when
// run is its BERTH_RUN: internal/hostpaths' Paths.Exe, which this package
// cannot import (hostpaths imports runtime/container, whose tests import
// this package).
func Exe(run string) string { return filepath.Join(run, "exe") }

// CgroupDirs lists the directories of a cgroup in every hierarchy, v1 and
// v2.
func CgroupDirs(cgroup string) []string {
	v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgroup))
	return append(v1, filepath.Join("/sys/fs/cgroup", cgroup))
}

// RemoveCgroup removes a cgroup (empty, as a test's parent is at the end)
// from every hierarchy.
func RemoveCgroup(cgroup string) {
	for _, d := range CgroupDirs(cgroup) {
		os.Remove(d)
	}
}
