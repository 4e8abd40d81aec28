package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// t0 has all nine digits of nanoseconds, so every record stamped with it has
// the same length.
var t0 = time.Date(2026, 11, 22, 18, 41, 22, 123456789, time.UTC)

func newWriter(t *testing.T, dir string, opts Options) *Writer {
	t.Helper()
	w, err := NewWriter(dir, "c", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// readAll reads the log "c" in dir without following.
func readAll(t *testing.T, dir string, opts ReadOptions) []Record {
	t.Helper()
	var got []Record
	err := Read(context.Background(), dir, "c", opts, func(r Record) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// lines returns the Line of each record as a string.
func lines(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Line)
	}
	return out
}

// fileNames lists dir.
func fileNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// dockerRecord is how Docker's jsonlog.JSONLog decodes a record.
type dockerRecord struct {
	Log     string            `json:"log,omitempty"`
	Stream  string            `json:"stream,omitempty"`
	Created time.Time         `json:"time"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// fileRecords decodes every line of a log file as Docker's reader would,
// failing the test on a line Docker could not decode.
func fileRecords(t *testing.T, path string) []dockerRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []dockerRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxRecord)
	for sc.Scan() {
		var r dockerRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: line %d: %v: %q", filepath.Base(path), len(recs)+1, err, sc.Bytes())
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}
