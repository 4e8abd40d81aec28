package container

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/sirupsen/logrus"

	"github.com/berth-dev/berth/runtime/rootfs"
	"github.com/berth-dev/berth/runtime/spec"
)

// etcFiles are the files berth writes for a container and bind-mounts over
// the image's: they are never taken from the image. secrets are the paths
// of the container's Files, in order.
type etcFiles struct {
	hosts, hostname, resolvConf string
	secrets                     []string
}

// writeEtcFiles writes /etc/hosts, /etc/hostname and /etc/resolv.conf for
// c into its state directory.
func writeEtcFiles(dir string, c *spec.Container) (etcFiles, error) {
	f := etcFiles{
		hosts:      filepath.Join(dir, "hosts"),
		hostname:   filepath.Join(dir, "hostname"),
		resolvConf: filepath.Join(dir, "resolv.conf"),
	}
	hostNet := c.NetworkMode == "host"
	hostname := c.Hostname
	if hostname == "" && (hostNet || c.UTS == "host") {
		h, err := os.Hostname()
		if err != nil {
			return f, err
		}
		hostname = h
	}
	hc := rootfs.HostsConfig{Hostname: hostname, Domainname: c.Domainname, ExtraHosts: c.ExtraHosts, HostNetwork: hostNet}
	for _, n := range c.Networks {
		hc.Addresses = append(hc.Addresses, n.IP)
		if len(hc.HostGateway) == 0 && n.Gateway.IsValid() {
			// host-gateway: the host as the container reaches it.
			hc.HostGateway = []netip.Addr{n.Gateway}
		}
	}
	if hostNet {
		hc.HostFile, _ = os.ReadFile("/etc/hosts")
	}
	hosts, err := rootfs.Hosts(hc)
	if err != nil {
		return f, fmt.Errorf("extra_hosts: %w", err)
	}
	name, err := rootfs.Hostname(hostname)
	if err != nil {
		return f, fmt.Errorf("hostname: %w", err)
	}
	resolv, err := rootfs.ResolvConf(rootfs.ResolvConfig{
		HostFile: hostResolvConf(), DNS: c.DNS, Search: c.DNSSearch, Options: c.DNSOptions, HostNetwork: hostNet,
	})
	if err != nil {
		return f, fmt.Errorf("dns: %w", err)
	}
	// Not synced: Start writes them again when a crash left one empty.
	for _, w := range []struct {
		path    string
		content []byte
	}{{f.hosts, hosts}, {f.hostname, name}, {f.resolvConf, resolv}} {
		tmp := w.path + ".tmp"
		err := os.WriteFile(tmp, w.content, 0o644)
		if err == nil {
			err = os.Rename(tmp, w.path)
		}
		if err != nil {
			return f, fmt.Errorf("writing %s: %w", filepath.Base(w.path), err)
		}
	}
	return f, nil
}

// checkEtcFiles writes the /etc files again when one is missing or empty
// (a crash before the kernel wrote it out).
func checkEtcFiles(dir string, c *spec.Container) error {
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			_, err := writeEtcFiles(dir, c)
			return err
		}
	}
	return nil
}

// hostResolvConf is the host's resolver configuration. With
// systemd-resolved, /etc/resolv.conf names a stub on 127.0.0.53 that a
// container cannot reach; the real upstream servers are in resolved's own
// file, as Docker reads them.
func hostResolvConf() []byte {
	for _, p := range []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	return nil
}

// process builds a libcontainer process: the user resolved inside the
// container's root filesystem, HOME from it when the environment has none,
// the working directory created there when mkdir says so (the container's
// own process, as Docker's; not an exec's, which fails in a missing one).
func (c *Container) process(root string, args, env []string, user string, groupAdd []string, wd string, mkdir bool) (*libcontainer.Process, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no command: the image has no entrypoint or cmd, and the service sets none")
	}
	u, err := rootfs.ResolveUser(root, user, groupAdd)
	if err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	cwd, err := rootfs.CleanWorkingDir(wd)
	if err != nil {
		return nil, fmt.Errorf("working_dir: %w", err)
	}
	// Docker creates a missing working directory owned by root.
	if mkdir {
		if err := rootfs.MkdirWorkingDir(root, cwd, 0, 0); err != nil {
			return nil, fmt.Errorf("working_dir: %w", err)
		}
	}
	env = slices.Clone(env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		env = append(env, "HOME="+u.Home)
	}
	p := &libcontainer.Process{
		Args: args, Env: env, Cwd: cwd, UID: int(u.UID), GID: int(u.GID),
		// Without a level, libcontainer's nsexec writes every debug line
		// of its start-up as JSON down the log pipe, and the parent
		// decodes each one only for logrus to drop it.
		LogLevel: strconv.Itoa(int(logrus.GetLevel())),
	}
	for _, g := range u.AdditionalGIDs {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	return p, nil
}
