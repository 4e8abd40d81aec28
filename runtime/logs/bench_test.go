package logs

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkWrite writes 100-byte lines, rotating at the default size.
func BenchmarkWrite(b *testing.B) {
	w, err := NewWriter(b.TempDir(), "c", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	line := append(bytes.Repeat([]byte("x"), 99), '\n')
	now := time.Now()
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write("stdout", now, line); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
