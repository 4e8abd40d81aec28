package logs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// follower runs Read with Follow in the background.
type follower struct {
	stop chan struct{}
	done chan error
	n    atomic.Int64 // lines received

	mu  sync.Mutex
	got []Record
}

func startFollow(ctx context.Context, dir string, opts ReadOptions) *follower {
	f := &follower{stop: make(chan struct{}), done: make(chan error, 1)}
	opts.Follow = true
	opts.Stop = f.stop
	opts.pollInterval = time.Millisecond
	go func() {
		f.done <- Read(ctx, dir, "c", opts, func(r Record) error {
			f.mu.Lock()
			f.got = append(f.got, r)
			f.mu.Unlock()
			f.n.Add(1)
			return nil
		})
	}()
	return f
}

// finish closes Stop and returns what Read returned, once it has.
func (f *follower) finish(t *testing.T) []Record {
	t.Helper()
	close(f.stop)
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Read did not return after Stop was closed")
	}
	return f.got
}

// waitFor waits until the follower has n lines.
func (f *follower) waitFor(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); f.n.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("follower has %d lines after 30s, want %d", f.n.Load(), n)
		}
	}
}

// numbered returns the number that starts each line.
func numbered(t *testing.T, recs []Record) []int {
	t.Helper()
	out := make([]int, len(recs))
	for i, r := range recs {
		n, err := strconv.Atoi(strings.Fields(string(r.Line))[0])
		if err != nil {
			t.Fatalf("line %q: %v", r.Line, err)
		}
		out[i] = n
	}
	return out
}

func numberedLine(i int) []byte { return fmt.Appendf(nil, "%05d %s\n", i, strings.Repeat("-", 20)) }

// TestFollowAcrossRotation writes 10,000 lines into files of about a
// kilobyte while a follower reads them. Nothing may be lost or repeated:
// either no file is deleted (many files kept), or the writer never gets more
// than lag lines ahead of the follower, fewer than a file holds, so that the
// follower always has the file it needs (the lines it would otherwise lose
// are exactly those of files deleted before it got to them).
func TestFollowAcrossRotation(t *testing.T) {
	const total = 10000
	for _, tc := range []struct {
		name     string
		maxSize  int64
		maxFiles int
		lag      int64 // 0: the writer does not wait
	}{
		// ~90-byte records: 11 to a kilobyte. (Each rotation renames
		// every file kept, so keeping a thousand small ones is slow.)
		{"no file deleted", 8000, 200, 0},
		{"max-file 2", 1000, 2, 8},
		{"max-file 1", 1000, 1, 8},
		{"max-file 5", 1000, 5, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := newWriter(t, dir, Options{MaxSize: tc.maxSize, MaxFiles: tc.maxFiles})
			f := startFollow(context.Background(), dir, ReadOptions{Tail: -1})
			for i := range total {
				for tc.lag > 0 && int64(i)-f.n.Load() > tc.lag {
					time.Sleep(20 * time.Microsecond)
				}
				if err := w.Write("stdout", time.Now(), numberedLine(i)); err != nil {
					t.Fatal(err)
				}
			}
			f.waitFor(t, total)
			got := numbered(t, f.finish(t))
			if len(got) != total {
				t.Fatalf("got %d lines, want %d", len(got), total)
			}
			for i, n := range got {
				if n != i {
					t.Fatalf("line %d is %d: lines lost, repeated or out of order", i, n)
				}
			}
		})
	}
}

// TestFollowSlowReader: a writer that does not wait for the follower, with
// only two files kept. Lines may be lost with the files deleted before the
// follower got to them, but none may come twice or out of order, and every
// line still on disk at the end must have come.
func TestFollowSlowReader(t *testing.T) {
	const total = 10000
	dir := t.TempDir()
	w := newWriter(t, dir, Options{MaxSize: 1000, MaxFiles: 2})
	f := startFollow(context.Background(), dir, ReadOptions{Tail: -1})
	for i := range total {
		if err := w.Write("stdout", time.Now(), numberedLine(i)); err != nil {
			t.Fatal(err)
		}
	}
	onDisk := numbered(t, readAll(t, dir, ReadOptions{Tail: -1}))
	f.waitFor(t, int64(len(onDisk))) // at least that many come
	got := numbered(t, f.finish(t))
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("line %d after line %d", got[i], got[i-1])
		}
	}
	if len(got) < len(onDisk) || !slicesHasSuffix(got, onDisk) {
		t.Fatalf("the follower's last lines %v are not the %d lines on disk", got[max(0, len(got)-len(onDisk)):], len(onDisk))
	}
	t.Logf("%d of %d lines followed, %d lost with deleted files", len(got), total, total-len(got))
}

func slicesHasSuffix(s, suffix []int) bool {
	if len(suffix) > len(s) {
		return false
	}
	for i, v := range suffix {
		if s[len(s)-len(suffix)+i] != v {
			return false
		}
	}
	return true
}

// TestFollowTail: the last lines of the history, then new lines as they
// come, including a line in chunks that ends after following began and a
// line of the other stream that ended before it.
func TestFollowTail(t *testing.T) {
	for _, tc := range []struct {
		tail    int
		history int64 // lines of the history returned
		want    []string
	}{
		{0, 0, []string{"first half second half\n", "4\n", "no end"}},
		{2, 2, []string{"3\n", "err\n", "first half second half\n", "4\n", "no end"}},
		{-1, 4, []string{"1\n", "2\n", "3\n", "err\n", "first half second half\n", "4\n", "no end"}},
	} {
		t.Run(fmt.Sprint("tail ", tc.tail), func(t *testing.T) {
			dir := t.TempDir()
			w := newWriter(t, dir, Options{})
			w.Write("stdout", t0, []byte("1\n2\n3\nfirst half "))
			w.Write("stderr", t0, []byte("err\n"))
			f := startFollow(context.Background(), dir, ReadOptions{Tail: tc.tail})
			f.waitFor(t, tc.history)
			time.Sleep(5 * time.Millisecond) // the follower polls the file
			w.Write("stdout", t0, []byte("second half\n4\n"))
			w.Write("stderr", t0, []byte("no end"))
			got := lines(f.finish(t))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("followed %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFollowWaitsForLog: following a container that has not written yet.
func TestFollowWaitsForLog(t *testing.T) {
	dir := t.TempDir()
	f := startFollow(context.Background(), dir, ReadOptions{Tail: -1})
	time.Sleep(5 * time.Millisecond)
	w := newWriter(t, dir, Options{})
	w.Write("stdout", t0, []byte("hello\n"))
	f.waitFor(t, 1)
	if got := lines(f.finish(t)); len(got) != 1 || got[0] != "hello\n" {
		t.Errorf("followed %q", got)
	}
}

func TestFollowCancel(t *testing.T) {
	dir := t.TempDir()
	newWriter(t, dir, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	f := startFollow(ctx, dir, ReadOptions{Tail: -1})
	cancel()
	select {
	case err := <-f.done:
		if err != context.Canceled {
			t.Errorf("Read returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return when ctx ended")
	}
}

func TestFollowUntil(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, Options{})
	f := startFollow(context.Background(), dir, ReadOptions{Tail: -1, Until: t0})
	w.Write("stdout", t0, []byte("in time\n"))
	w.Write("stdout", t0.Add(time.Second), []byte("too late\n"))
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return at a line past Until")
	}
	if got := lines(f.got); len(got) != 1 || got[0] != "in time\n" {
		t.Errorf("followed %q", got)
	}
}
