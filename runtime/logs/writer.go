package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

// Writer appends records to a container's log file and rotates it. It is
// safe for concurrent use: the stdout and stderr copiers share one.
type Writer struct {
	path string
	opts Options

	mu   sync.Mutex
	f    *os.File // nil once closed
	size int64    // bytes in f
	// torn is set when f ends in the middle of a record (a write failed
	// and the partial record could not be cut off): the next record then
	// starts with "\n" so that only the torn one is lost.
	torn bool
	buf  []byte

	// write writes b to f; tests replace it to simulate a full disk.
	write func(f *os.File, b []byte) (int, error)
}

// NewWriter opens <dir>/<name>.log for appending, creating dir (mode 0700)
// and the file (mode 0600) if needed. Rotated files left over from a larger
// max-file setting are deleted.
func NewWriter(dir, name string, opts Options) (*Writer, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("logs: creating log directory: %w", err)
	}
	w := &Writer{
		path:  filepath.Join(dir, name+".log"),
		opts:  opts,
		write: (*os.File).Write,
	}
	if err := w.removeStale(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("logs: opening log file: %w", err)
	}
	st, err := f.Stat()
	if err == nil && st.Mode().IsRegular() {
		// A file from an older berth may have been created with looser
		// permissions; logs can hold secrets a service printed.
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("logs: opening log file: %w", err)
	}
	w.f, w.size = f, st.Size()
	if w.size > 0 {
		// A crash in the middle of a write leaves a record without its
		// "\n"; start the next one on a line of its own.
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, w.size-1); err == nil && last[0] != '\n' {
			w.torn = true
		}
	}
	return w, nil
}

// checkName rejects names that would put the log file outside its directory.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`+"\x00") {
		return fmt.Errorf("logs: log name %q: %w: must be a plain file name", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// rotatedName is the name of the n-th rotated file of the log file path.
func rotatedName(path string, n int) string { return path + "." + strconv.Itoa(n) }

// removeStale deletes rotated files numbered MaxFiles or more and a new file
// a rotation left behind.
func (w *Writer) removeStale() error {
	ns, err := rotatedFiles(w.path)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n >= w.opts.MaxFiles {
			if err := os.Remove(rotatedName(w.path, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("logs: removing old log file: %w", err)
			}
		}
	}
	if err := os.Remove(w.path + ".new"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logs: removing old log file: %w", err)
	}
	return nil
}

// Path returns the path of the current log file.
func (w *Writer) Path() string { return w.path }

// Write appends p to the log as output of stream read at time t. p is split
// after each '\n' and into chunks of at most 16 KiB; a last piece without
// '\n' is written as a chunk without "\n". It stops at the first error.
func (w *Writer) Write(stream string, t time.Time, p []byte) error {
	for len(p) > 0 {
		line, rest, newline := p, []byte(nil), false
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, rest, newline = p[:i], p[i+1:], true
		}
		for len(line) > maxChunk {
			n := cutChunk(line)
			if err := w.writeRecord(stream, t, line[:n], false); err != nil {
				return err
			}
			line = line[n:]
		}
		if len(line) > 0 || newline {
			if err := w.writeRecord(stream, t, line, newline); err != nil {
				return err
			}
		}
		p = rest
	}
	return nil
}

// writeRecord writes one record, rotating the file first if the record
// would make it exceed MaxSize.
func (w *Writer) writeRecord(stream string, t time.Time, text []byte, newline bool) error {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("logs: time %v: %w: RFC 3339 has four-digit years", t, errdefs.ErrInvalidArgument)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("logs: writing %s: %w", w.path, os.ErrClosed)
	}
	w.buf = append(w.buf[:0], '\n')
	w.buf = appendRecord(w.buf, text, newline, stream, t)
	if w.size > 0 && w.size+int64(len(w.buf)-1) > w.opts.MaxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	out := w.buf[1:]
	if w.torn {
		out = w.buf
	}
	n, err := w.write(w.f, out)
	if err != nil {
		if n > 0 {
			// Cut off the partial record, so that a reader does not lose
			// the next one too: O_APPEND writes go after it.
			if terr := w.f.Truncate(w.size); terr != nil {
				w.size += int64(n)
				w.torn = true
			}
		}
		return fmt.Errorf("logs: writing %s: %w", w.path, err)
	}
	w.size += int64(n)
	w.torn = false
	return nil
}

// rotate starts a new current file. On error the current file stays open, and
// the next write tries again.
func (w *Writer) rotate() error {
	if w.opts.MaxFiles == 1 {
		// Docker truncates the file in place. Replacing it gives the same
		// result on disk, and a reader still holding the old file reads it
		// to its end instead of reading the new one from a stale offset.
		tmp := w.path + ".new"
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("logs: rotating %s: %w", w.path, err)
		}
		if err := os.Rename(tmp, w.path); err != nil {
			f.Close()
			os.Remove(tmp)
			return fmt.Errorf("logs: rotating %s: %w", w.path, err)
		}
		w.swap(f)
		return nil
	}
	// Shift the rotated files that exist, oldest first, so that each
	// rename goes to a free name; the same as Docker's loop over every
	// number, without a syscall for each missing file.
	ns, err := rotatedFiles(w.path)
	if err != nil {
		return fmt.Errorf("logs: rotating %s: %w", w.path, err)
	}
	for _, n := range slices.Backward(ns) {
		from := rotatedName(w.path, n)
		if n+1 >= w.opts.MaxFiles {
			err = os.Remove(from)
		} else {
			err = os.Rename(from, rotatedName(w.path, n+1))
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logs: rotating %s: %w", w.path, err)
		}
	}
	if err := os.Rename(w.path, rotatedName(w.path, 1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logs: rotating %s: %w", w.path, err)
	}
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		// Put the file back so that the current file keeps its name.
		os.Rename(rotatedName(w.path, 1), w.path)
		return fmt.Errorf("logs: rotating %s: %w", w.path, err)
	}
	w.swap(f)
	return nil
}

// swap makes f, a new empty file, the current file.
func (w *Writer) swap(f *os.File) {
	// Every write to the old file has returned: a close error could only
	// repeat an error a write already reported.
	w.f.Close()
	w.f, w.size, w.torn = f, 0, false
}

// Close closes the current file. Writes after Close fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("logs: closing %s: %w", w.path, err)
	}
	return nil
}

// rotatedFiles returns the numbers n of the files <path>.n, ascending (newest
// first). A missing directory has none.
func rotatedFiles(path string) ([]int, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("logs: listing log files: %w", err)
	}
	prefix := filepath.Base(path) + "."
	var ns []int
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || s == "" || s[0] == '0' || strings.Trim(s, "0123456789") != "" {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil {
			ns = append(ns, n)
		}
	}
	// os.ReadDir sorts by name, which puts 10 before 2.
	slices.Sort(ns)
	return ns, nil
}
