package logs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadSkipsCorruptRecords(t *testing.T) {
	rec := func(text string) string {
		return string(appendRecord(nil, []byte(text), true, "stdout", t0))
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "truncated last line",
			files: map[string]string{"c.log": rec("one") + rec("two") + `{"log":"thr`},
			want:  []string{"one\n", "two\n"},
		},
		{
			name:  "truncated last line of a rotated file",
			files: map[string]string{"c.log.1": rec("one") + `{"log":"tw`, "c.log": rec("three")},
			want:  []string{"one\n", "three\n"},
		},
		{
			name: "garbage between records",
			files: map[string]string{"c.log": rec("one") + "not json\n" + "{}\n" + `{"log":"no time\n"}` + "\n" +
				`{"log":"bad time\n","time":"yesterday"}` + "\n" + `{"log":"","time":"2026-11-22T18:41:22Z"}` + "\n" +
				"\x00\x00\x00\n" + rec("two")},
			want: []string{"one\n", "two\n"},
		},
		{
			name:  "a record torn and then followed by the next",
			files: map[string]string{"c.log": rec("one") + `{"log":"to` + rec("lost with the torn one") + rec("three")},
			want:  []string{"one\n", "three\n"},
		},
		{
			name: "docker's own records",
			files: map[string]string{"c.log": `{"log":"from docker\n","stream":"stderr","attrs":{"tag":"web"},"time":"2017-01-02T03:04:05.5Z"}` + "\n" +
				`{"log":"no stream\n","time":"2017-01-02T03:04:06Z"}` + "\n"},
			want: []string{"from docker\n", "no stream\n"},
		},
		{
			name:  "no log at all",
			files: nil,
			want:  nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, tail := range []int{-1, len(tc.want), 1} {
				got := lines(readAll(t, dir, ReadOptions{Tail: tail}))
				want := tc.want
				if tail >= 0 && tail < len(want) {
					want = want[len(want)-tail:]
				}
				if !slices.Equal(got, want) {
					t.Errorf("tail %d: read %q, want %q", tail, got, want)
				}
			}
		})
	}
}

// TestReadJoinsChunks writes the chunks of lines of two streams interleaved,
// in files that rotate every few records, and reads them back with every
// Tail: the last n lines are always the last n of all of them.
func TestReadJoinsChunks(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 7))
		dir := t.TempDir()
		w := newWriter(t, dir, Options{MaxSize: 400, MaxFiles: 50})
		// A line comes back when its last chunk was written; one never
		// ended counts as ended by its last chunk.
		type line struct {
			end  int
			text string
		}
		var model []line
		open := map[string]string{} // the chunks of the line not ended yet
		last := map[string]int{}    // when each stream was last written
		streams := []string{"stdout", "stderr"}
		for i := range 60 {
			s := streams[rng.IntN(2)]
			text := fmt.Sprintf("%s%d", s[3:], i)
			end := rng.IntN(3) == 0
			if err := w.writeRecord(s, t0.Add(time.Duration(i)), []byte(text), end); err != nil {
				t.Fatal(err)
			}
			open[s] += text
			last[s] = i
			if end {
				model = append(model, line{i, open[s] + "\n"})
				delete(open, s)
			}
		}
		for s, text := range open {
			model = append(model, line{last[s], text})
		}
		slices.SortFunc(model, func(a, b line) int { return a.end - b.end })
		var want []string
		for _, l := range model {
			want = append(want, l.text)
		}

		all := lines(readAll(t, dir, ReadOptions{Tail: -1}))
		if !slices.Equal(all, want) {
			t.Fatalf("seed %d: read\n%q\nwant\n%q", seed, all, want)
		}
		for n := 0; n <= len(want)+1; n++ {
			got := lines(readAll(t, dir, ReadOptions{Tail: n}))
			if w := want[max(0, len(want)-n):]; !slices.Equal(got, w) {
				t.Fatalf("seed %d: tail %d: read %q, want %q", seed, n, got, w)
			}
		}
	}
}

func TestReadSinceUntil(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, Options{})
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for i := range 10 {
		if err := w.Write("stdout", at(i), fmt.Appendf(nil, "%d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		opts ReadOptions
		want string
	}{
		{"since", ReadOptions{Tail: -1, Since: at(7)}, "7 8 9"},
		{"until", ReadOptions{Tail: -1, Until: at(2)}, "0 1 2"},
		{"since and until", ReadOptions{Tail: -1, Since: at(4), Until: at(5)}, "4 5"},
		{"tail applies before since", ReadOptions{Tail: 3, Since: at(8)}, "8 9"},
		{"nothing that recent", ReadOptions{Tail: -1, Since: at(20)}, ""},
		{"tail 0", ReadOptions{Tail: 0}, ""},
		{"tail", ReadOptions{Tail: 2}, "8 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Fields(strings.Join(lines(readAll(t, dir, tc.opts)), " "))
			if want := strings.Fields(tc.want); !slices.Equal(got, want) {
				t.Errorf("read %q, want %q", got, want)
			}
		})
	}
}

func TestReadCallbackError(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, Options{})
	w.Write("stdout", t0, []byte("a\nb\nc\n"))
	stop := errors.New("enough")
	n := 0
	err := Read(context.Background(), dir, "c", ReadOptions{Tail: -1}, func(Record) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Read returned %v after %d records, want %v after 1", err, n, stop)
	}
}
