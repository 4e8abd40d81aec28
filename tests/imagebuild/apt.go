package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// pkg is one Debian package an image is made of, exactly as apt would fetch
// it: the version and checksum pin the image's content.
type pkg struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// File is the name apt-get download saves the package under
	// (name_version_arch.deb, with the epoch's colon escaped).
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// depGraph is the dependency data of `apt-cache depends --recurse`: for each
// package, its Depends and Pre-Depends, each a list of alternatives.
type depGraph map[string][][]depAlt

type depAlt struct {
	name string
	// virtual marks a name no real package has (apt prints it in <>): only
	// other packages' Provides can satisfy it.
	virtual bool
}

// aptDepends reads the candidate versions' dependency graph below roots in one
// apt-cache call: apt rebuilds its package cache on every start when the
// cache file is disabled (as Debian's container images do), so one call per
// package or per level would cost a second each.
func aptDepends(ctx context.Context, roots []string) (depGraph, error) {
	args := []string{"depends", "--recurse",
		"--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
		"--no-replaces", "--no-enhances"}
	out, err := run(ctx, "", "apt-cache", append(args, roots...)...)
	if err != nil {
		return nil, err
	}
	return parseDepends(out)
}

// parseDepends parses apt-cache depends output:
//
//	postgresql-15
//	 |Depends: locales
//	  Depends: locales-all
//	  Depends: <debconf-2.0>
//	    cdebconf
//
// A leading "|" joins a line to the next one as alternatives; four-space
// lines list the providers of a name, which the resolver does not use.
func parseDepends(out []byte) (depGraph, error) {
	g := depGraph{}
	var cur string
	var alts []depAlt
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case !strings.HasPrefix(line, " "):
			if len(alts) > 0 {
				return nil, fmt.Errorf("apt-cache depends: %s: alternatives without an end", cur)
			}
			cur = strings.Trim(line, "<>")
			if _, ok := g[cur]; !ok {
				g[cur] = nil
			}
		case strings.HasPrefix(line, "    "):
		default:
			or := line[1] == '|'
			kind, name, ok := strings.Cut(strings.TrimSpace(line[2:]), ": ")
			if !ok || cur == "" {
				return nil, fmt.Errorf("apt-cache depends: unexpected line %q", line)
			}
			if kind != "Depends" && kind != "PreDepends" {
				continue
			}
			virtual := strings.HasPrefix(name, "<")
			alts = append(alts, depAlt{name: strings.Trim(name, "<>"), virtual: virtual})
			if !or {
				g[cur] = append(g[cur], alts)
				alts = nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("apt-cache depends: %w", err)
	}
	return g, nil
}

// selectPackages walks the graph from roots and returns the packages an image
// needs, sorted. A dependency is satisfied by the first alternative that is
// already chosen, else by the first one not denied; a dependency whose every
// alternative is denied is dropped, which is how the image leaves out the
// packaging machinery (debconf, perl, dpkg, …) that only maintainer scripts
// use. Roots are never denied.
func selectPackages(g depGraph, roots []string, denied func(string) bool) ([]string, error) {
	chosen := map[string]bool{}
	queue := slices.Clone(roots)
	for _, r := range roots {
		if _, ok := g[r]; !ok {
			return nil, fmt.Errorf("package %s: apt knows no such package (is apt-get update needed?)", r)
		}
		chosen[r] = true
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
	clauses:
		for _, alts := range g[p] {
			for _, a := range alts {
				if chosen[baseName(a.name)] {
					continue clauses
				}
			}
			for _, a := range alts {
				n := baseName(a.name)
				if denied(n) {
					continue
				}
				if a.virtual {
					return nil, fmt.Errorf("package %s depends on %s, which only other packages provide: add a provider to the image's packages or deny %s", p, n, n)
				}
				if _, ok := g[n]; !ok {
					return nil, fmt.Errorf("package %s depends on %s, which apt-cache did not describe", p, n)
				}
				chosen[n] = true
				queue = append(queue, n)
				continue clauses
			}
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// baseName drops an architecture qualifier such as perl:any.
func baseName(n string) string {
	n, _, _ = strings.Cut(n, ":")
	return n
}

// aptLocate asks apt which file, version and checksum each package's
// candidate comes from, without downloading anything.
func aptLocate(ctx context.Context, names []string) (map[string]pkg, error) {
	out, err := run(ctx, "", "apt-get", append([]string{"download", "--print-uris"}, names...)...)
	if err != nil {
		return nil, err
	}
	return parsePrintURIs(out)
}

// parsePrintURIs parses lines of the form
//
//	'http://…/libcap2_2.66-4%2bdeb12u3%2bb1_amd64.deb' libcap2_1%3a2.66-4+deb12u3+b1_amd64.deb 27708 SHA256:8d68…
func parsePrintURIs(out []byte) (map[string]pkg, error) {
	pkgs := map[string]pkg{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue
		}
		file := f[1]
		parts := strings.Split(strings.TrimSuffix(file, ".deb"), "_")
		if len(parts) != 3 || !strings.HasSuffix(file, ".deb") {
			return nil, fmt.Errorf("apt-get --print-uris: unexpected file name %q", file)
		}
		version, err := url.PathUnescape(parts[1])
		if err != nil {
			return nil, fmt.Errorf("apt-get --print-uris: version in %q: %w", file, err)
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("apt-get --print-uris: size of %s: %w", file, err)
		}
		sum, ok := strings.CutPrefix(f[3], "SHA256:")
		if !ok {
			return nil, fmt.Errorf("apt-get --print-uris: %s has no SHA256 (%s)", file, f[3])
		}
		pkgs[parts[0]] = pkg{Name: parts[0], Version: version, Arch: parts[2], File: file, SHA256: sum, Size: size}
	}
	return pkgs, sc.Err()
}

// fetch makes sure every package is in dir with the checksum apt's metadata
// gives, downloading the missing or damaged ones in one apt-get call.
// It returns how many packages it downloaded.
func fetch(ctx context.Context, dir string, pkgs []pkg) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("deb cache: %w", err)
	}
	var missing []pkg
	for _, p := range pkgs {
		if err := verifyDeb(filepath.Join(dir, p.File), p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return 0, nil
	}
	args := []string{"download"}
	if os.Geteuid() == 0 {
		// apt drops to its _apt user for downloads and then cannot write a
		// directory root owns; it falls back with a warning on every run.
		args = append(args, "-o", "APT::Sandbox::User=root")
	}
	for _, p := range missing {
		args = append(args, p.Name+"="+p.Version)
	}
	if _, err := run(ctx, dir, "apt-get", args...); err != nil {
		return 0, err
	}
	for _, p := range missing {
		if err := verifyDeb(filepath.Join(dir, p.File), p); err != nil {
			return 0, err
		}
	}
	return len(missing), nil
}

func verifyDeb(file string, p pkg) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("%s: sha256 %s, apt says %s", file, got, p.SHA256)
	}
	return nil
}

// aptState fingerprints the files apt decides candidate versions from, by
// name, size and modification time. While it is unchanged, apt would resolve
// the same packages again, so an image whose inputs carry the same
// fingerprint is up to date without asking apt, which takes a second a call.
func aptState() (string, error) {
	h := sha256.New()
	// What apt reads to pick candidate versions: its configuration and
	// sources, the downloaded package lists, and dpkg's record of what is
	// installed (an installed version can be a candidate).
	for _, root := range []string{"/etc/apt", "/var/lib/apt/lists", "/var/lib/dpkg/status"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path.Base(p) == "partial" {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Name() == "lock" {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("apt state: %w", err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// haveAptLists reports whether apt has package lists at all: a fresh Debian
// container has none until apt-get update.
func haveAptLists() bool {
	m, _ := filepath.Glob("/var/lib/apt/lists/*_Packages*")
	return len(m) > 0
}

// nativeArch is dpkg's name for the machine's architecture (amd64, arm64).
func nativeArch(ctx context.Context) (string, error) {
	out, err := run(ctx, "", "dpkg", "--print-architecture")
	return strings.TrimSpace(string(out)), err
}

// run runs a command and returns its standard output; its error carries the
// command line and what the command wrote to standard error.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		shown := args
		if len(shown) > 6 {
			shown = append(slices.Clone(shown[:6]), fmt.Sprintf("…(%d more)", len(args)-6))
		}
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(shown, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
