package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every non-test source file must be part of the builder hash, or a change
// to it would leave stale images looking up to date.
func TestBuilderSourceEmbedded(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		if _, err := builderSource.ReadFile(f); err != nil {
			t.Errorf("%s is not in the //go:embed list of builderSource", f)
		}
	}
}

const dependsOutput = `postgresql-15
 |Depends: locales
  Depends: locales-all
  Depends: postgresql-client-15
  Depends: tzdata
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
  Depends: libc6
  Depends: libsystemd0
    libelogind0
  PreDepends: <perl:any>
locales
  Depends: libc-bin
locales-all
postgresql-client-15
  Depends: libc6
 |Depends: libfoo
  Depends: libbar
tzdata
libc6
  Depends: libgcc-s1
libgcc-s1
  Depends: libc6
libsystemd0
  Depends: libc6
libfoo
libbar
libc-bin
<debconf-2.0>
<perl:any>
`

func TestSelectPackages(t *testing.T) {
	g, err := parseDepends([]byte(dependsOutput))
	if err != nil {
		t.Fatal(err)
	}
	deny := func(n string) bool {
		return slices.Contains([]string{"locales", "locales-all", "debconf", "debconf-2.0", "perl", "tzdata", "libfoo"}, n)
	}
	got, err := selectPackages(g, []string{"postgresql-15"}, deny)
	if err != nil {
		t.Fatal(err)
	}
	// Denied alternatives fall through to the next (libfoo → libbar); a
	// dependency with every alternative denied is dropped (locales,
	// debconf, perl:any); provider lines are not dependencies.
	want := []string{"libbar", "libc6", "libgcc-s1", "libsystemd0", "postgresql-15", "postgresql-client-15"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}

	// A root wins over the deny list, and satisfies the dependencies on it.
	got, err = selectPackages(g, []string{"postgresql-15", "tzdata"}, deny)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "tzdata") {
		t.Errorf("root tzdata missing from %q", got)
	}

	// A virtual package nobody denied cannot be chosen.
	if _, err := selectPackages(g, []string{"postgresql-15"}, func(n string) bool { return n == "locales" || n == "locales-all" || n == "debconf" }); err == nil || !strings.Contains(err.Error(), "debconf-2.0") {
		t.Errorf("undenied virtual dependency: %v", err)
	}
	if _, err := selectPackages(g, []string{"no-such-package"}, deny); err == nil {
		t.Error("unknown root: no error")
	}
}

func TestParsePrintURIs(t *testing.T) {
	out := `'http://deb.debian.org/debian/pool/main/libc/libcap2/libcap2_2.66-4%2bdeb12u3%2bb1_amd64.deb' libcap2_1%3a2.66-4+deb12u3+b1_amd64.deb 27708 SHA256:8d684c673e7483802a5c447834b0df6fce006eb3a7109e1be412f5ad425bb24f
'http://deb.debian.org/debian/pool/main/t/tzdata/tzdata_2026f-0%2bdeb12u1_all.deb' tzdata_2026f-0+deb12u1_all.deb 308000 SHA256:00ff
`
	got, err := parsePrintURIs([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := pkg{Name: "libcap2", Version: "1:2.66-4+deb12u3+b1", Arch: "amd64", File: "libcap2_1%3a2.66-4+deb12u3+b1_amd64.deb", SHA256: "8d684c673e7483802a5c447834b0df6fce006eb3a7109e1be412f5ad425bb24f", Size: 27708}
	if got["libcap2"] != want {
		t.Errorf("libcap2: %+v\nwant %+v", got["libcap2"], want)
	}
	if got["tzdata"].Arch != "all" || got["tzdata"].Version != "2026f-0+deb12u1" {
		t.Errorf("tzdata: %+v", got["tzdata"])
	}
}

func member(typ byte, name, target string, data string) debEntry {
	return debEntry{
		hdr:  &tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)},
		data: []byte(data),
	}
}

func TestRootfsUsrMerge(t *testing.T) {
	r := newRootfs()
	err := r.addPackage("libz", []debEntry{
		member(tar.TypeDir, "./", "", ""),
		member(tar.TypeDir, "./lib/", "", ""),
		member(tar.TypeDir, "./lib/x86_64-linux-gnu/", "", ""),
		member(tar.TypeReg, "./lib/x86_64-linux-gnu/libz.so.1.2.13", "", "z"),
		member(tar.TypeSymlink, "./lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.2.13", ""),
		member(tar.TypeDir, "./bin/", "", ""),
		member(tar.TypeSymlink, "./bin/tool", "../usr/libexec/tool", ""),
		member(tar.TypeLink, "./bin/zz", "./lib/x86_64-linux-gnu/libz.so.1.2.13", ""),
		member(tar.TypeDir, "./usr/", "", ""),
		member(tar.TypeDir, "./usr/libexec/", "", ""),
		member(tar.TypeReg, "./usr/libexec/tool", "", "t"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.mergeUsr(); err != nil {
		t.Fatal(err)
	}
	if n := r.nodes["usr/lib/x86_64-linux-gnu/libz.so.1"]; n == nil || n.target != "libz.so.1.2.13" {
		t.Errorf("same-directory link: %+v", n)
	}
	// Moved from /bin to /usr/bin, the link must still reach /usr/libexec.
	if n := r.nodes["usr/bin/tool"]; n == nil || n.target != "../libexec/tool" {
		t.Errorf("moved relative link: %+v", n)
	}
	if n := r.resolve("/bin/tool"); n == nil || string(n.data) != "t" {
		t.Errorf("/bin/tool resolves to %+v", n)
	}
	if n := r.resolve("lib/x86_64-linux-gnu/libz.so.1"); n == nil || string(n.data) != "z" {
		t.Errorf("/lib/x86_64-linux-gnu/libz.so.1 resolves to %+v", n)
	}
	if n := r.nodes["usr/bin/zz"]; n == nil || n.typ != tar.TypeReg || string(n.data) != "z" {
		t.Errorf("hard link: %+v", n)
	}
	if n := r.nodes["bin"]; n == nil || n.target != "usr/bin" {
		t.Errorf("/bin: %+v", n)
	}

	// Two packages may share directories, not files.
	if err := r.addPackage("other", []debEntry{member(tar.TypeDir, "./usr/lib/", "", "")}); err != nil {
		t.Errorf("shared directory: %v", err)
	}
	if err := r.addPackage("other", []debEntry{member(tar.TypeReg, "./usr/libexec/tool", "", "different")}); err == nil {
		t.Error("two packages with one file: no error")
	}

	freed, err := r.prune([]string{"usr/libexec"})
	if err != nil || freed != 1 || r.nodes["usr/libexec/tool"] != nil || r.nodes["usr/libexec"] != nil {
		t.Errorf("prune: freed %d, %v; tool %v", freed, err, r.nodes["usr/libexec/tool"])
	}
}

func TestRootfsTarIsStable(t *testing.T) {
	build := func() []byte {
		r := newRootfs()
		if err := r.addPackage("p", []debEntry{member(tar.TypeReg, "./usr/bin/a", "", "a"), member(tar.TypeReg, "./etc/b", "", "b")}); err != nil {
			t.Fatal(err)
		}
		r.mkdir("data", 0o755, 999, 999)
		if err := r.addParents(); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := r.writeTar(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := build()
	if !bytes.Equal(first, build()) {
		t.Error("the same file system gave two different layers")
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(first))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
		if hdr.Name == "data/" && (hdr.Uid != 999 || hdr.Gid != 999) {
			t.Errorf("data/ owned by %d:%d", hdr.Uid, hdr.Gid)
		}
	}
	if want := []string{"data/", "etc/", "etc/b", "usr/", "usr/bin/", "usr/bin/a"}; !slices.Equal(names, want) {
		t.Errorf("members %q, want %q", names, want)
	}
}

// checkLinks must notice a program whose shared libraries were left out.
func TestCheckLinks(t *testing.T) {
	exe := "/usr/bin/true"
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("needs a dynamically linked %s: %v", exe, err)
	}
	libs, _ := f.ImportedLibraries()
	f.Close()
	if !slices.Contains(libs, "libc.so.6") {
		t.Skipf("%s does not link libc.so.6", exe)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	r := newRootfs()
	r.writeFile("usr/bin/true", 0o755, data)
	err = r.checkLinks()
	if err == nil || !strings.Contains(err.Error(), "/usr/bin/true needs libc.so.6") || !strings.Contains(err.Error(), "interpreter") {
		t.Errorf("checkLinks without libc: %v", err)
	}
}
