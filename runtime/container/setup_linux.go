package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/berth-dev/berth/runtime/spec"
)

// etcFiles are the files berth writes for a container and bind-mounts over
// the image's: they are never taken from the image.
type etcFiles struct{ hosts, hostname, resolvConf string }

func writeEtcFiles(dir string, c *spec.Container) (etcFiles, error) {
	f := etcFiles{
		hosts:      filepath.Join(dir, "hosts"),
		hostname:   filepath.Join(dir, "hostname"),
		resolvConf: filepath.Join(dir, "resolv.conf"),
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, h := range c.ExtraHosts {
		name, addr, _ := strings.Cut(h, ":")
		hosts += addr + "\t" + name + "\n"
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	for p, content := range map[string]string{f.hosts: hosts, f.hostname: c.Hostname + "\n", f.resolvConf: string(resolv)} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return f, err
		}
	}
	return f, nil
}

// process builds a libcontainer process: the user resolved inside the
// container's root filesystem, the working directory created there.
func (c *Container) process(rootfs string, args, env []string, user string, groupAdd []string, wd string) (*libcontainer.Process, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no command: the image has no entrypoint or cmd, and the service sets none")
	}
	p := &libcontainer.Process{Args: args, Env: env, Cwd: wd}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if user != "" {
		u, g, _ := strings.Cut(user, ":")
		uid, err := strconv.Atoi(u)
		if err != nil {
			return nil, fmt.Errorf("user %q", user)
		}
		p.UID, p.GID = uid, 0
		if g != "" {
			if p.GID, err = strconv.Atoi(g); err != nil {
				return nil, fmt.Errorf("user %q", user)
			}
		}
	}
	for _, g := range groupAdd {
		gid, err := strconv.Atoi(g)
		if err != nil {
			return nil, fmt.Errorf("group_add %q", g)
		}
		p.AdditionalGroups = append(p.AdditionalGroups, gid)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, p.Cwd), 0o755); err != nil {
		return nil, err
	}
	return p, nil
}
