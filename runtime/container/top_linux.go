package container

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Top lists the container's processes as `ps -ef` does on the host: a
// header row, then one row per process (UID PID PPID C STIME TTY TIME CMD).
func (c *Container) Top(ctx context.Context) ([][]string, error) {
	lc, err := c.running()
	if err != nil {
		return nil, err
	}
	pids, err := lc.Processes()
	if err != nil {
		return nil, fmt.Errorf("container %s: listing processes: %w", c.Spec.Name, err)
	}
	var info unix.Sysinfo_t
	unix.Sysinfo(&info)
	boot := time.Now().Add(-time.Duration(info.Uptime) * time.Second)
	const ticks = 100 // USER_HZ
	rows := [][]string{{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}}
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone meanwhile
		}
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 20 {
			continue
		}
		ppid := f[1]
		utime, _ := strconv.ParseUint(f[11], 10, 64)
		stime, _ := strconv.ParseUint(f[12], 10, 64)
		start, _ := strconv.ParseUint(f[19], 10, 64)
		cpu := time.Duration(utime+stime) * time.Second / ticks
		started := boot.Add(time.Duration(start) * time.Second / ticks)
		uid := "?"
		if st, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				uid = strconv.FormatUint(uint64(sys.Uid), 10)
				// ps names users as the host knows them.
				if u, err := user.LookupId(uid); err == nil {
					uid = u.Username
				}
			}
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		if cmdline == "" {
			cmdline = "[" + string(stat[strings.IndexByte(string(stat), '(')+1:i]) + "]"
		}
		rows = append(rows, []string{uid, strconv.Itoa(pid), ppid, "0", started.Format("15:04"), "?",
			fmt.Sprintf("%02d:%02d:%02d", int(cpu.Hours()), int(cpu.Minutes())%60, int(cpu.Seconds())%60), cmdline})
	}
	return rows, nil
}

// Root is the directory the container's files are seen at from the host.
// With mounts (`berth cp`), while it runs, its init process's root, which
// shows its volumes and other mounts too; otherwise (`berth export`, or a
// container that does not run) its root filesystem, which stays mounted
// as long as the container exists, without them.
func (c *Container) Root(ctx context.Context, mounts bool) (string, error) {
	if lc, err := c.running(); err == nil && mounts {
		st, err := lc.State()
		if err != nil {
			return "", fmt.Errorf("container %s: %w", c.Spec.Name, err)
		}
		return fmt.Sprintf("/proc/%d/root", st.InitProcessPid), nil
	}
	rootfs := filepath.Join(c.rt.dir(c.ID), "rootfs")
	if !mounted(rootfs) {
		return "", fmt.Errorf("container %s: its root filesystem is not mounted: %w", c.Spec.Name, errdefs.ErrFailedPrecondition)
	}
	return rootfs, nil
}
