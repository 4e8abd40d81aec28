package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"time"
)

// rootfs is an image's file system, assembled in memory from the packages'
// data archives and the files the builder adds, then written out as one
// layer. Paths are relative to the root, without a leading slash.
type rootfs struct {
	nodes map[string]*node
	// epoch is the modification time of files the builder makes: the newest
	// time in any package, so that the same inputs give the same layer.
	epoch time.Time
}

type node struct {
	typ      byte // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode     int64
	uid, gid int
	data     []byte
	target   string // of a symlink
	mtime    time.Time
	from     string // the package that shipped it; "" for the builder's own
}

func newRootfs() *rootfs {
	return &rootfs{nodes: map[string]*node{}}
}

// mergedDirs are the top-level directories Debian has merged into /usr:
// bookworm's packages still ship files under /bin and /lib, which dpkg puts
// in /usr through the symlinks. The image does the same, so paths from
// either world work.
func mergedDirs() []string {
	return []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}
}

// usrMerge maps a path to where it lies on a merged-/usr system.
func usrMerge(p string) string {
	first, _, _ := strings.Cut(p, "/")
	if slices.Contains(mergedDirs(), first) {
		return "usr/" + p
	}
	return p
}

// debEntry is one member of a package's data archive.
type debEntry struct {
	hdr  *tar.Header
	data []byte
}

// readDeb returns the members of a package's data archive. dpkg-deb unpacks
// whichever compression the package uses (xz, zstd, gzip) into a plain tar
// stream, which the standard library reads; nothing touches the disk.
func readDeb(ctx context.Context, file string) ([]debEntry, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dpkg-deb %s: %w", file, err)
	}
	entries, readErr := readTar(out)
	if readErr != nil {
		// Drain so dpkg-deb does not block on a full pipe before Wait.
		_, _ = io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", file, err, strings.TrimSpace(stderr.String()))
	}
	if readErr != nil {
		return nil, fmt.Errorf("%s: %w", file, readErr)
	}
	return entries, nil
}

func readTar(r io.Reader) ([]debEntry, error) {
	var entries []debEntry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
		e := debEntry{hdr: hdr}
		if hdr.Typeflag == tar.TypeReg {
			e.data = make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, e.data); err != nil {
				return nil, fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
		entries = append(entries, e)
	}
}

// cleanMember turns a member name ("./usr/bin/x") into a root-relative path
// ("" for the root itself) and refuses names that would leave the root.
func cleanMember(name string) (string, error) {
	rel := strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	if rel == "" || rel == "." {
		return "", nil
	}
	if path.IsAbs(rel) || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("member %q is not a clean relative path", name)
	}
	return rel, nil
}

// addPackage adds a package's files, all of them root's whatever the
// archive says: ownership changes only where a service needs it (imageSpec's
// dirs), as maintainer scripts would have done.
func (r *rootfs) addPackage(name string, entries []debEntry) error {
	for _, e := range entries {
		p, err := cleanMember(e.hdr.Name)
		if err != nil {
			return fmt.Errorf("package %s: %w", name, err)
		}
		if p == "" {
			continue
		}
		mp := usrMerge(p)
		n := &node{typ: e.hdr.Typeflag, mode: e.hdr.Mode & 0o7777, mtime: e.hdr.ModTime, from: name}
		switch e.hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeReg:
			n.data = e.data
		case tar.TypeSymlink:
			n.target = e.hdr.Linkname
			if mp != p && !path.IsAbs(n.target) {
				// A relative link moved from /bin to /usr/bin would now
				// count its ../ from the wrong place: point it anew at
				// where its target ended up.
				abs := path.Join(path.Dir(p), n.target)
				n.target = relPath(path.Dir(mp), usrMerge(abs))
			}
		case tar.TypeLink:
			// Layers may hold hard links, but only to members written
			// before them; the layer is written sorted, so a copy is
			// simpler and costs little for the few packages that have any.
			lp, err := cleanMember(e.hdr.Linkname)
			if err != nil {
				return fmt.Errorf("package %s: %s: %w", name, p, err)
			}
			t := r.nodes[usrMerge(lp)]
			if t == nil || t.typ != tar.TypeReg {
				return fmt.Errorf("package %s: %s: hard link to %s, which is no regular file", name, p, lp)
			}
			n.typ, n.data = tar.TypeReg, t.data
		default:
			return fmt.Errorf("package %s: %s: unsupported tar type %q", name, p, e.hdr.Typeflag)
		}
		if err := r.put(mp, n); err != nil {
			return err
		}
		if n.mtime.After(r.epoch) {
			r.epoch = n.mtime
		}
	}
	return nil
}

// relPath is the relative path from directory dir to target, both relative
// to the root.
func relPath(dir, target string) string {
	from := strings.Split(dir, "/")
	to := strings.Split(target, "/")
	if dir == "." || dir == "" {
		from = nil
	}
	i := 0
	for i < len(from) && i < len(to)-1 && from[i] == to[i] {
		i++
	}
	up := slices.Repeat([]string{".."}, len(from)-i)
	return path.Join(append(up, to[i:]...)...)
}

// put adds a node, merging directories and refusing two different files at
// one path, which would mean two packages claim it.
func (r *rootfs) put(p string, n *node) error {
	old := r.nodes[p]
	switch {
	case old == nil:
		r.nodes[p] = n
	case old.typ == tar.TypeDir && n.typ == tar.TypeDir:
	case old.typ == n.typ && old.target == n.target && old.mode == n.mode && bytes.Equal(old.data, n.data):
	default:
		return fmt.Errorf("/%s: shipped differently by %s and %s", p, describe(old.from), describe(n.from))
	}
	return nil
}

func describe(from string) string {
	if from == "" {
		return "the image builder"
	}
	return "package " + from
}

// mkdir makes (or takes over) a directory with the given owner and mode.
func (r *rootfs) mkdir(p string, mode int64, uid, gid int) {
	r.nodes[p] = &node{typ: tar.TypeDir, mode: mode, uid: uid, gid: gid}
}

// writeFile adds a file the builder makes, replacing any package's.
func (r *rootfs) writeFile(p string, mode int64, data []byte) {
	r.nodes[p] = &node{typ: tar.TypeReg, mode: mode, data: data}
}

// symlink adds a link unless the path exists: a package's own file wins over
// a busybox applet of the same name.
func (r *rootfs) symlink(p, target string) {
	if _, ok := r.nodes[p]; !ok {
		r.nodes[p] = &node{typ: tar.TypeSymlink, mode: 0o777, target: target}
	}
}

// mergeUsr adds the /bin → usr/bin style links of a merged-/usr system.
func (r *rootfs) mergeUsr() error {
	for _, d := range mergedDirs() {
		u := r.nodes["usr/"+d]
		if u == nil && d != "bin" && d != "sbin" && d != "lib" {
			continue
		}
		if u == nil {
			r.mkdir("usr/"+d, 0o755, 0, 0)
		} else if u.typ != tar.TypeDir {
			return fmt.Errorf("/usr/%s is no directory", d)
		}
		if old := r.nodes[d]; old != nil {
			return fmt.Errorf("/%s exists already (from %s)", d, describe(old.from))
		}
		r.nodes[d] = &node{typ: tar.TypeSymlink, mode: 0o777, target: "usr/" + d}
	}
	return nil
}

// prune removes every path that matches a pattern (path.Match syntax) or
// lies below one that does, and reports how many bytes of file data went.
func (r *rootfs) prune(patterns []string) (int64, error) {
	for _, pat := range patterns {
		if _, err := path.Match(pat, ""); err != nil {
			return 0, fmt.Errorf("prune pattern %q: %w", pat, err)
		}
	}
	var freed int64
	for p, n := range r.nodes {
		for q := p; q != "."; q = path.Dir(q) {
			if slices.ContainsFunc(patterns, func(pat string) bool { ok, _ := path.Match(pat, q); return ok }) {
				freed += int64(len(n.data))
				delete(r.nodes, p)
				break
			}
		}
	}
	return freed, nil
}

// resolve follows symlinks the way the kernel would inside the image and
// returns the node a path leads to, or nil.
func (r *rootfs) resolve(p string) *node {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	var cur []string
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		n := r.nodes[strings.Join(append(cur, part), "/")]
		if n == nil {
			return nil
		}
		if n.typ != tar.TypeSymlink {
			if len(parts) > 0 && n.typ != tar.TypeDir {
				return nil
			}
			cur = append(cur, part)
			if len(parts) == 0 {
				return n
			}
			continue
		}
		if hops++; hops > 40 {
			return nil
		}
		if path.IsAbs(n.target) {
			cur = nil
		}
		parts = append(strings.Split(n.target, "/"), parts...)
	}
	if len(cur) == 0 {
		return &node{typ: tar.TypeDir}
	}
	return r.nodes[strings.Join(cur, "/")]
}

// checkLinks makes sure every dynamically linked program and library finds
// its interpreter and each shared library it names (DT_NEEDED) in the
// image's library directories or its RUNPATH. A package left out by the deny
// list that is needed after all shows up here, at build time, instead of as
// a container that cannot start.
func (r *rootfs) checkLinks() error {
	var libDirs []string
	for p, n := range r.nodes {
		if path.Base(p) == "libc.so.6" && n.typ != tar.TypeDir && !slices.Contains(libDirs, path.Dir(p)) {
			libDirs = append(libDirs, path.Dir(p))
		}
	}
	var problems []string
	for _, p := range r.sortedPaths() {
		n := r.nodes[p]
		if n.typ != tar.TypeReg || !bytes.HasPrefix(n.data, []byte("\x7fELF")) {
			continue
		}
		f, err := elf.NewFile(bytes.NewReader(n.data))
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		for _, prog := range f.Progs {
			if prog.Type != elf.PT_INTERP {
				continue
			}
			interp, err := io.ReadAll(prog.Open())
			if err != nil {
				return fmt.Errorf("/%s: interpreter: %w", p, err)
			}
			if ip := strings.TrimRight(string(interp), "\x00"); r.resolve(ip) == nil {
				problems = append(problems, fmt.Sprintf("/%s: interpreter %s is missing", p, ip))
			}
		}
		libs, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		dirs := slices.Clone(libDirs)
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			vals, _ := f.DynString(tag)
			for _, v := range vals {
				for _, d := range strings.Split(v, ":") {
					dirs = append(dirs, strings.ReplaceAll(d, "$ORIGIN", "/"+path.Dir(p)))
				}
			}
		}
		for _, lib := range libs {
			if !slices.ContainsFunc(dirs, func(d string) bool {
				t := r.resolve(path.Join(d, lib))
				return t != nil && t.typ == tar.TypeReg
			}) {
				problems = append(problems, fmt.Sprintf("/%s needs %s", p, lib))
			}
		}
		f.Close()
	}
	if len(problems) > 0 {
		return fmt.Errorf("shared libraries missing from the image (add their packages, or prune what needs them):\n\t%s", strings.Join(problems, "\n\t"))
	}
	return nil
}

// addParents makes the directories leading to each path that a package or
// the builder did not list, as root's, mode 0755.
func (r *rootfs) addParents() error {
	for _, p := range r.sortedPaths() {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			n := r.nodes[d]
			if n == nil {
				r.mkdir(d, 0o755, 0, 0)
				continue
			}
			if n.typ != tar.TypeDir {
				return fmt.Errorf("/%s lies below /%s, which is no directory", p, d)
			}
		}
	}
	return nil
}

func (r *rootfs) sortedPaths() []string {
	ps := make([]string, 0, len(r.nodes))
	for p := range r.nodes {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// size is the total of the file data, for the builder's report.
func (r *rootfs) size() int64 {
	var s int64
	for _, n := range r.nodes {
		s += int64(len(n.data))
	}
	return s
}

// writeTar writes the file system as a layer. Members are sorted, so parents
// come before their children, and carry no user or group names, access or
// change times: the same file system always gives the same bytes.
func (r *rootfs) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, p := range r.sortedPaths() {
		n := r.nodes[p]
		mtime := n.mtime
		if mtime.IsZero() {
			mtime = r.epoch
		}
		hdr := &tar.Header{
			Typeflag: n.typ,
			Name:     p,
			Mode:     n.mode,
			Uid:      n.uid,
			Gid:      n.gid,
			ModTime:  mtime,
			Linkname: n.target,
			Size:     int64(len(n.data)),
		}
		if n.typ == tar.TypeDir {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		if _, err := tw.Write(n.data); err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
	}
	return tw.Close()
}
