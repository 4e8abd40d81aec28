package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// splitLines splits s after each '\n', keeping a last line without one.
func splitLines(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s, '\n') + 1
		if i == 0 {
			i = len(s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

func TestLongLines(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name    string
		in      string
		records []int // length of each record's text, "\n" included
	}{
		{"short", "abc\n", []int{4}},
		{"empty line", "\n", []int{1}},
		{"16 KiB - 1", a(maxChunk-1) + "\n", []int{maxChunk}},
		{"exactly 16 KiB", a(maxChunk) + "\n", []int{maxChunk + 1}},
		{"16 KiB + 1", a(maxChunk+1) + "\n", []int{maxChunk, 2}},
		{"100 KiB", a(100<<10) + "\n", []int{maxChunk, maxChunk, maxChunk, maxChunk, maxChunk, maxChunk, 4<<10 + 1}},
		{"character across the cut", a(maxChunk-1) + "é" + "b\n", []int{maxChunk - 1, 4}},
		{"lines around a long one", "x\n" + a(maxChunk+5) + "\ny\n", []int{2, maxChunk, 6, 2}},
		{"no newline at the end", "abc", []int{3}},
		{"long line without newline", a(20000), []int{maxChunk, 20000 - maxChunk}},
		{"pty line ends are kept", "a\r\nb\r\n", []int{3, 3}},
	} {
		for _, via := range []string{"Write", "Copy", "Copy/full reads"} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				dir := t.TempDir()
				w := newWriter(t, dir, Options{})
				var err error
				switch via {
				case "Write":
					err = w.Write("stdout", t0, []byte(tc.in))
				case "Copy/full reads":
					// Reads that fill Copy's buffer, which makes it grow.
					err = Copy(context.Background(), strings.NewReader(tc.in), "stdout", w)
				default:
					// Reads of half what Copy asks for, to cut the
					// input at odd places.
					err = Copy(context.Background(), iotest.HalfReader(strings.NewReader(tc.in)), "stdout", w)
				}
				if err != nil {
					t.Fatal(err)
				}

				recs := fileRecords(t, filepath.Join(dir, "c.log"))
				var sizes []int
				var joined strings.Builder
				for i, r := range recs {
					sizes = append(sizes, len(r.Log))
					joined.WriteString(r.Log)
					if r.Stream != "stdout" {
						t.Errorf("record %d: stream %q", i, r.Stream)
					}
					if i > 0 && !strings.HasSuffix(recs[i-1].Log, "\n") && !r.Created.Equal(recs[i-1].Created) {
						t.Errorf("record %d: a line's chunks have different times", i)
					}
				}
				if !slices.Equal(sizes, tc.records) {
					t.Errorf("records of %v bytes, want %v", sizes, tc.records)
				}
				if joined.String() != tc.in {
					t.Errorf("records do not add up to the input")
				}

				got := lines(readAll(t, dir, ReadOptions{Tail: -1}))
				if want := splitLines(tc.in); !slices.Equal(got, want) {
					t.Errorf("read %d lines %.40q, want %d %.40q", len(got), got, len(want), want)
				}
			})
		}
	}
}

// TestCopyDrainsWhenWritesFail: with every write failing, Copy still reads
// its input to the end, so a container writing far more than a pipe holds
// finishes, and Copy reports what it dropped.
func TestCopyDrainsWhenWritesFail(t *testing.T) {
	const lineCount, lineLen = 2000, 1000 // 2 MB, thirty times a pipe's buffer
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string, w **Writer)
	}{
		{"full disk", func(t *testing.T, dir string, w **Writer) {
			// /dev/full fails every write with ENOSPC, as a full disk does.
			if _, err := os.Stat("/dev/full"); err != nil {
				t.Skip("no /dev/full")
			}
			if err := os.Symlink("/dev/full", filepath.Join(dir, "c.log")); err != nil {
				t.Fatal(err)
			}
			*w = newWriter(t, dir, Options{})
		}},
		{"failing writes", func(t *testing.T, dir string, w **Writer) {
			*w = newWriter(t, dir, Options{})
			(*w).write = func(*os.File, []byte) (int, error) { return 0, syscall.ENOSPC }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w *Writer
			tc.setup(t, t.TempDir(), &w)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			go func() {
				line := []byte(strings.Repeat("x", lineLen-1) + "\n")
				for range lineCount {
					if _, err := pw.Write(line); err != nil {
						break
					}
				}
				pw.Close()
			}()
			done := make(chan error, 1)
			go func() { done <- Copy(context.Background(), pr, "stderr", w) }()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Copy stopped reading: the writer would block")
			}
			var dropped *DroppedError
			if !errors.As(err, &dropped) {
				t.Fatalf("Copy returned %v, want a *DroppedError", err)
			}
			if dropped.Records != lineCount || dropped.Bytes != lineCount*lineLen || dropped.Stream != "stderr" {
				t.Errorf("dropped %d records, %d bytes of %s; want %d, %d of stderr", dropped.Records, dropped.Bytes, dropped.Stream, lineCount, lineCount*lineLen)
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("error %v does not wrap ENOSPC", err)
			}
		})
	}
}

// TestCopyCancel: ending ctx interrupts a read blocked on a pipe, writes
// what Copy held, and leaves the pipe usable.
func TestCopyCancel(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, Options{})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if _, err := pw.Write([]byte("line\npartial")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Copy(ctx, pr, "stdout", w) }()
	// Both were written at once, so one read returns both: once the line
	// is in the file, Copy holds "partial" and waits in a read.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		data, _ := os.ReadFile(filepath.Join(dir, "c.log"))
		if bytes.Contains(data, []byte(`"line\n"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Copy wrote nothing")
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Copy returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Copy did not return when ctx ended")
	}
	if got, want := lines(readAll(t, dir, ReadOptions{Tail: -1})), []string{"line\n", "partial"}; !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
	// The deadline Copy set to interrupt the read is gone.
	if _, err := pw.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(io.LimitReader(pr, 1)); err != nil || string(b) != "x" {
		t.Errorf("reading the pipe after Copy: %q, %v", b, err)
	}
}

func TestCopyReadError(t *testing.T) {
	w := newWriter(t, t.TempDir(), Options{})
	boom := errors.New("boom")
	err := Copy(context.Background(), iotest.ErrReader(boom), "stdout", w)
	if !errors.Is(err, boom) {
		t.Errorf("Copy returned %v, want %v", err, boom)
	}
	if err := Copy(context.Background(), strings.NewReader(""), "stdout", w); err != nil {
		t.Errorf("Copy of nothing returned %v", err)
	}
}

func ExampleCopy() {
	dir, _ := os.MkdirTemp("", "logs")
	defer os.RemoveAll(dir)
	w, _ := NewWriter(dir, "web-1", Options{MaxSize: 10_000_000, MaxFiles: 3})
	_ = Copy(context.Background(), strings.NewReader("hello\nworld\n"), "stdout", w)
	w.Close()
	_ = Read(context.Background(), dir, "web-1", ReadOptions{Tail: 1}, func(r Record) error {
		fmt.Printf("%s %q\n", r.Stream, r.Line)
		return nil
	})
	// Output: stdout "world\n"
}
