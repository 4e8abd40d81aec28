package logs

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unicode/utf8"
)

func TestWriteFormat(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, Options{})
	if err := w.Write("stdout", t0, []byte("hello <world> & \"you\"\n\tbye\r\n\x01\xff\u2028")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "c.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Byte for byte what Docker's json-file driver writes.
	want := `{"log":"hello \u003cworld\u003e \u0026 \"you\"\n","stream":"stdout","time":"2026-11-22T18:41:22.123456789Z"}` + "\n" +
		`{"log":"\u0009bye\r\n","stream":"stdout","time":"2026-11-22T18:41:22.123456789Z"}` + "\n" +
		`{"log":"\u0001\ufffd\u2028","stream":"stdout","time":"2026-11-22T18:41:22.123456789Z"}` + "\n"
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
}

func TestWritePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	newWriter(t, dir, Options{})
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, "c.log"): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
		}
	}
}

// TestEscapeRoundTrip checks that what appendEscaped writes decodes, with
// encoding/json as Docker's reader uses it, to the text written, with each
// byte that is not UTF-8 replaced by U+FFFD.
func TestEscapeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "\n", "\r", "\t", "\\", "\"", "<", "&", "\x00", "\x7f", "\xff", "\xe2\x82", "é", "€", "😀", "\u2028", "\u2029", "\ufffd"}
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(20) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		in := b.String()
		enc := `"` + string(appendEscaped(nil, []byte(in))) + `"`
		var got string
		if err := json.Unmarshal([]byte(enc), &got); err != nil {
			t.Fatalf("%q encoded as %s: %v", in, enc, err)
		}
		if want := replaceInvalid(in); got != want {
			t.Fatalf("%q encoded as %s decodes to %q, want %q", in, enc, got, want)
		}
	}
}

// Lines of 100 bytes (with "\n") make records of 100 bytes of JSON and
// more; the table cuts them into files of a few records each.
func TestRotation(t *testing.T) {
	const written = 23
	text := func(i int) string { return fmt.Sprintf("line %04d %s\n", i, strings.Repeat("x", 89)) }
	recordSize := len(appendRecord(nil, []byte(text(0)[:99]), true, "stdout", t0))
	for _, tc := range []struct {
		maxFiles  int
		perFile   int
		wantFiles []string
	}{
		{maxFiles: 1, perFile: 4, wantFiles: []string{"c.log"}},
		{maxFiles: 2, perFile: 4, wantFiles: []string{"c.log", "c.log.1"}},
		{maxFiles: 5, perFile: 4, wantFiles: []string{"c.log", "c.log.1", "c.log.2", "c.log.3", "c.log.4"}},
		{maxFiles: 5, perFile: 1, wantFiles: []string{"c.log", "c.log.1", "c.log.2", "c.log.3", "c.log.4"}},
		{maxFiles: 10, perFile: 4, wantFiles: []string{"c.log", "c.log.1", "c.log.2", "c.log.3", "c.log.4", "c.log.5"}},
	} {
		t.Run(fmt.Sprintf("max-file=%d/per-file=%d", tc.maxFiles, tc.perFile), func(t *testing.T) {
			dir := t.TempDir()
			maxSize := int64(tc.perFile * recordSize) // exactly perFile records fit
			w := newWriter(t, dir, Options{MaxSize: maxSize, MaxFiles: tc.maxFiles})
			for i := range written {
				if err := w.Write("stdout", t0, []byte(text(i))); err != nil {
					t.Fatal(err)
				}
			}
			if got := fileNames(t, dir); !slices.Equal(got, tc.wantFiles) {
				t.Fatalf("files %v, want %v", got, tc.wantFiles)
			}
			for _, name := range tc.wantFiles {
				st, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				// The current file holds what is left over; the rotated
				// ones are full.
				want := int64(tc.perFile * recordSize)
				if name == "c.log" {
					want = int64((written-1)%tc.perFile+1) * int64(recordSize)
				}
				if st.Size() != want {
					t.Errorf("%s: %d bytes, want %d", name, st.Size(), want)
				}
			}

			kept := (written-1)%tc.perFile + 1 + (len(tc.wantFiles)-1)*tc.perFile
			dropped := written - kept
			got := lines(readAll(t, dir, ReadOptions{Tail: -1}))
			if len(got) != written-dropped {
				t.Fatalf("read %d lines, want %d written - %d dropped by rotation", len(got), written, dropped)
			}
			for i, l := range got {
				if want := text(dropped + i); l != want {
					t.Fatalf("line %d: %q, want %q", i, l, want)
				}
			}
		})
	}
}

func TestRotationRemovesStaleFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"c.log.2", "c.log.3", "c.log.7", "c.log.new", "other.log.9"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	newWriter(t, dir, Options{MaxFiles: 3})
	want := []string{"c.log", "c.log.2", "other.log.9"}
	if got := fileNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
}

func TestWriteConcurrent(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, Options{MaxSize: 8 << 10, MaxFiles: 1000})
	var wg sync.WaitGroup
	for _, stream := range []string{"stdout", "stderr"} {
		wg.Go(func() {
			for i := range 1000 {
				if err := w.Write(stream, t0, fmt.Appendf(nil, "%s %d\n", stream, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	next := map[string]int{}
	for _, r := range readAll(t, dir, ReadOptions{Tail: -1}) {
		if want := fmt.Sprintf("%s %d\n", r.Stream, next[r.Stream]); string(r.Line) != want {
			t.Fatalf("got %q, want %q", r.Line, want)
		}
		next[r.Stream]++
	}
	if next["stdout"] != 1000 || next["stderr"] != 1000 {
		t.Errorf("read %v lines, want 1000 of each", next)
	}
}

// TestWriteRecoversFromTornWrite: a write that fails half way (a full disk)
// must cost only its own record, not the next one too.
func TestWriteRecoversFromTornWrite(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, Options{})
	fail := false
	w.write = func(f *os.File, b []byte) (int, error) {
		if fail {
			n, _ := f.Write(b[:len(b)/2])
			return n, syscall.ENOSPC
		}
		return f.Write(b)
	}
	for i := range 6 {
		fail = i == 2 || i == 3
		err := w.Write("stdout", t0, fmt.Appendf(nil, "line %d\n", i))
		if fail != (err != nil) {
			t.Fatalf("line %d: write error %v, want failure %v", i, err, fail)
		}
	}
	fileRecords(t, filepath.Join(dir, "c.log")) // every line decodes
	got := lines(readAll(t, dir, ReadOptions{Tail: -1}))
	want := []string{"line 0\n", "line 1\n", "line 4\n", "line 5\n"}
	if !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
}

// TestWriteAfterCrash: a file that ends in the middle of a record (berth was
// killed during a write) gets its next record on a line of its own.
func TestWriteAfterCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	good := appendRecord(nil, []byte("before"), true, "stdout", t0)
	if err := os.WriteFile(path, append(good, `{"log":"torn li`...), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, dir, Options{})
	if err := w.Write("stderr", t0, []byte("after\n")); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, dir, ReadOptions{Tail: -1})
	if want := []string{"before\n", "after\n"}; !slices.Equal(lines(got), want) {
		t.Errorf("read %q, want %q", lines(got), want)
	}
}

func TestWriteAfterClose(t *testing.T) {
	w := newWriter(t, t.TempDir(), Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("stdout", t0, []byte("x\n")); err == nil {
		t.Error("write after Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCutChunk: chunks end on character boundaries when they can.
func TestCutChunk(t *testing.T) {
	a := strings.Repeat("a", maxChunk)
	for _, tc := range []struct {
		name string
		in   string
		want int
	}{
		{"short", "abc", 3},
		{"ascii", a + "b", maxChunk},
		{"two-byte char across the cut", a[:maxChunk-1] + "é" + "z", maxChunk - 1},
		{"four-byte char across the cut", a[:maxChunk-3] + "😀" + "z", maxChunk - 3},
		{"four-byte char just fits", a[:maxChunk-4] + "😀" + "z", maxChunk},
		{"char not complete yet", a[:maxChunk-1] + "\xf0\x9f", maxChunk - 1},
		{"invalid bytes", a[:maxChunk-1] + "\xff\xff", maxChunk},
	} {
		if got := cutChunk([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: cut at %d, want %d", tc.name, got, tc.want)
		}
		if got := cutChunk([]byte(tc.in)); got < len(tc.in) && got > 0 && !utf8.Valid([]byte(tc.in[:got])) && !strings.Contains(tc.name, "invalid") {
			t.Errorf("%s: chunk is not valid UTF-8", tc.name)
		}
	}
}

// replaceInvalid replaces each byte of s that is not part of a UTF-8
// character with U+FFFD, as Docker's encoder does.
func replaceInvalid(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
