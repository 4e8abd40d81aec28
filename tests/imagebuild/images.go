package main

import (
	"fmt"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageSpec says what one image is made of and how it runs.
type imageSpec struct {
	// name is the stem of the image's files in the output directory.
	name string
	// ref is the tag the tarball carries, spelled as docker save spells
	// Docker Hub's official images.
	ref string
	// packages are the roots; their dependencies come along, less
	// commonDeny. Roots are never denied.
	packages []string
	// prune lists paths (path.Match patterns) to leave out, besides
	// commonPrune; a pattern also drops everything below what it matches.
	prune    []string
	accounts []account
	dirs     []dirSpec
	// files maps a path in the image to a file under files/ in this folder.
	files  map[string]string
	edit   func(*rootfs) error
	config v1.Config
}

type account struct {
	name     string
	uid, gid int
	home     string
	shell    string
	// groupOnly is a group without a user; userOnly a user whose group is
	// listed under another name (nobody's is nogroup, as on Debian).
	groupOnly, userOnly bool
}

type dirSpec struct {
	path     string
	mode     int64 // permission bits plus setgid/sticky, as in tar
	uid, gid int
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// commonDeny lists the packages no image takes even when a dependency names
// them: they serve
// dpkg, maintainer scripts and init systems, none of which run in a
// container, or they are big and optional (LLVM for PostgreSQL's JIT, the
// locales). A pattern uses path.Match syntax.
func commonDeny() []string {
	return []string{
		"adduser", "cdebconf", "debconf", "debconf-2.0", "dpkg", "init-system-helpers",
		"install-info", "libc-l10n", "libllvm*", "locales", "locales-all", "lsb-base",
		"passwd", "perl", "perl-base", "perl-modules-*", "libperl*", "sensible-utils",
		"ssl-cert", "systemd", "systemd-sysv", "sysvinit-utils", "tar", "tzdata", "ucf",
		"usr-is-merged", "usrmerge",
		// PostgreSQL's cluster tools (pg_ctlcluster, pg_wrapper) are Perl; the
		// entrypoint runs the server binaries directly, as the official image does.
		"postgresql-common", "postgresql-client-common",
	}
}

// commonPrune lists the files no image needs: documentation, translations,
// shell completions, debugger helpers, and the hooks of init systems,
// initramfs and log rotation.
func commonPrune() []string {
	return []string{
		"usr/share/doc", "usr/share/doc-base", "usr/share/man", "usr/share/info",
		"usr/share/locale", "usr/share/lintian", "usr/share/bug",
		"usr/share/bash-completion", "usr/share/gcc", "usr/share/gdb",
		"usr/share/initramfs-tools", "etc/init.d", "etc/logrotate.d", "etc/default",
		"usr/lib/systemd", "usr/lib/tmpfiles.d",
	}
}

// baseAccounts and baseDirs are what every image has of a small Linux
// system: each has busybox for a shell.
func baseAccounts() []account {
	return []account{
		{name: "root", uid: 0, gid: 0, home: "/root", shell: "/bin/sh"},
		{name: "daemon", uid: 1, gid: 1, home: "/usr/sbin", shell: "/bin/false"},
		{name: "nobody", uid: 65534, gid: 65534, home: "/nonexistent", shell: "/bin/false", userOnly: true},
		{name: "nogroup", gid: 65534, groupOnly: true},
	}
}

func baseDirs() []dirSpec {
	return []dirSpec{
		{path: "root", mode: 0o700},
		{path: "tmp", mode: 0o1777},
		{path: "var/tmp", mode: 0o1777},
		{path: "run", mode: 0o755},
		{path: "etc", mode: 0o755},
	}
}

// specs returns the images the builder knows, in build order.
func specs() []imageSpec {
	return []imageSpec{
		{
			name:     "busybox",
			ref:      "busybox:latest",
			packages: []string{"busybox-static"},
			accounts: []account{{name: "app", uid: 1000, gid: 1000, home: "/home/app", shell: "/bin/sh"}},
			dirs:     []dirSpec{{path: "home/app", mode: 0o755, uid: 1000, gid: 1000}},
			config: v1.Config{
				Env: []string{defaultPath},
				Cmd: []string{"sh"},
			},
		},
		{
			name:     "redis",
			ref:      "redis:7",
			packages: []string{"redis-server", "busybox-static"},
			// Debian's redis.conf serves its init script (daemonize, a log
			// file under /var/log/redis); like the official image, this one
			// runs on the compiled-in defaults unless given a config.
			prune:    []string{"etc/redis"},
			accounts: []account{{name: "redis", uid: 999, gid: 999, home: "/data", shell: "/bin/sh"}},
			dirs:     []dirSpec{{path: "data", mode: 0o755, uid: 999, gid: 999}},
			files:    map[string]string{"usr/local/bin/docker-entrypoint.sh": "redis-entrypoint.sh"},
			config: v1.Config{
				Env:          []string{defaultPath},
				Entrypoint:   []string{"docker-entrypoint.sh"},
				Cmd:          []string{"redis-server"},
				WorkingDir:   "/data",
				Volumes:      map[string]struct{}{"/data": {}},
				ExposedPorts: map[string]struct{}{"6379/tcp": {}},
			},
		},
		{
			name: "postgres",
			ref:  "postgres:15",
			// libc-bin brings the C.UTF-8 locale, so that initdb makes UTF8
			// databases without the locales package; tzdata lets sessions
			// use named time zones, as they can with the official image.
			packages: []string{"postgresql-15", "busybox-static", "libc-bin", "tzdata"},
			prune: []string{
				// The JIT: llvmjit.so needs libllvm, over 100 MB; jit is off.
				"usr/lib/postgresql/15/lib/llvmjit*", "usr/lib/postgresql/15/lib/bitcode",
				// Leap-second time zones; the posix ones stay.
				"usr/share/zoneinfo/right",
			},
			accounts: []account{{name: "postgres", uid: 999, gid: 999, home: "/var/lib/postgresql", shell: "/bin/sh"}},
			dirs: []dirSpec{
				{path: "var/lib/postgresql", mode: 0o755, uid: 999, gid: 999},
				// As in the official image: the entrypoint narrows it to
				// 0700 and hands it to postgres when it starts as root.
				{path: "var/lib/postgresql/data", mode: 0o1777, uid: 999, gid: 999},
				{path: "run/postgresql", mode: 0o2775, uid: 999, gid: 999},
				{path: "docker-entrypoint-initdb.d", mode: 0o755},
			},
			files: map[string]string{"usr/local/bin/docker-entrypoint.sh": "postgres-entrypoint.sh"},
			edit:  editPostgresConf,
			config: v1.Config{
				Env: []string{
					defaultPath + ":/usr/lib/postgresql/15/bin",
					"PG_MAJOR=15",
					"LANG=C.UTF-8",
					"PGDATA=/var/lib/postgresql/data",
				},
				Entrypoint:   []string{"docker-entrypoint.sh"},
				Cmd:          []string{"postgres"},
				StopSignal:   "SIGINT",
				Volumes:      map[string]struct{}{"/var/lib/postgresql/data": {}},
				ExposedPorts: map[string]struct{}{"5432/tcp": {}},
			},
		},
	}
}

// editPostgresConf changes the sample that initdb copies into every new data
// directory, as the official image does: listen on all addresses (the
// container's network is the boundary) and, since LLVM is left out, no JIT.
func editPostgresConf(r *rootfs) error {
	const sample = "usr/share/postgresql/15/postgresql.conf.sample"
	n := r.nodes[sample]
	if n == nil {
		return fmt.Errorf("/%s: missing from postgresql-15", sample)
	}
	data := n.data
	for _, e := range []struct{ re, repl string }{
		{`(?m)^#?listen_addresses\s*=\s*\S+.*$`, `listen_addresses = '*'`},
		{`(?m)^#?jit\s*=\s*\S+.*$`, `jit = off`},
	} {
		re := regexp.MustCompile(e.re)
		if !re.Match(data) {
			return fmt.Errorf("/%s: no line matches %s", sample, e.re)
		}
		data = re.ReplaceAll(data, []byte(e.repl))
	}
	r.writeFile(sample, 0o644, data)
	return nil
}

// writeAccounts writes /etc/passwd and /etc/group.
func writeAccounts(r *rootfs, accounts []account) {
	var passwd, group strings.Builder
	for _, a := range accounts {
		if !a.groupOnly {
			fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:%s\n", a.name, a.uid, a.gid, a.name, a.home, a.shell)
		}
		if !a.userOnly {
			fmt.Fprintf(&group, "%s:x:%d:\n", a.name, a.gid)
		}
	}
	r.writeFile("etc/passwd", 0o644, []byte(passwd.String()))
	r.writeFile("etc/group", 0o644, []byte(group.String()))
}

// nsswitch makes glibc look names up in the files the container runtime
// writes (/etc/hosts) before DNS, as a Debian system does.
const nsswitch = `passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
`
