package logs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// FuzzReader reads arbitrary bytes as a rotated file and a current file. It
// must not panic or hang, and must agree with itself: the last n lines are
// the last n of all the lines, and following to the end returns the same
// lines.
func FuzzReader(f *testing.F) {
	// One directory for every input, rewritten each time: a new one for
	// each would cost more than the reading.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		k := int(split) % (len(data) + 1)
		if err := os.WriteFile(filepath.Join(dir, "c.log.1"), data[:k], 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "c.log"), data[k:], 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		read := func(opts ReadOptions) []string {
			var got []string
			if err := Read(ctx, dir, "c", opts, func(r Record) error {
				if len(r.Line) == 0 || len(r.Line) > maxLine {
					t.Fatalf("line of %d bytes", len(r.Line))
				}
				got = append(got, string(r.Line))
				return nil
			}); err != nil {
				t.Fatalf("Read(%+v): %v", opts, err)
			}
			return got
		}

		all := read(ReadOptions{Tail: -1})
		for _, n := range []int{1, 2, len(all) / 2} {
			got := read(ReadOptions{Tail: n})
			if want := all[max(0, len(all)-n):]; !slices.Equal(got, want) {
				t.Fatalf("tail %d: %q, want %q", n, got, want)
			}
		}

		stop := make(chan struct{})
		close(stop)
		followed := read(ReadOptions{Tail: -1, Follow: true, Stop: stop, pollInterval: time.Millisecond})
		// Following returns lines never ended last rather than in their
		// place: compare the lines, not their order.
		slices.Sort(followed)
		all = slices.Clone(all)
		slices.Sort(all)
		if !slices.Equal(followed, all) {
			t.Fatalf("followed %q, want %q", followed, all)
		}
	})
}
