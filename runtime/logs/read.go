package logs

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Record is one line of a container's output, read back from its log.
type Record struct {
	// Time is when berth read the line (its first chunk) from the
	// container, in UTC.
	Time time.Time
	// Stream is "stdout" or "stderr".
	Stream string
	// Line is what the container wrote, its '\n' included: writing the
	// Lines of a stream one after the other gives back its output. A line
	// the container never ended, or one longer than 1 MiB (returned in
	// pieces), has no '\n'. Line is not reused by Read.
	Line []byte
}

// ReadOptions say which records Read returns.
type ReadOptions struct {
	// Tail is how many of the last lines to return: -1 for all of them, 0
	// for none (with Follow: only what is written from now on).
	Tail int
	// Since and Until, if not zero, skip lines older than Since and end
	// the reading at the first line newer than Until. Like Docker, they
	// apply after Tail: Tail 10 with Since returns those of the last ten
	// lines that are recent enough.
	Since, Until time.Time
	// Follow keeps reading as the log grows and across rotations, until
	// ctx is done or Stop is closed.
	Follow bool
	// Stop, if not nil, ends Follow gracefully: once it is closed, Read
	// returns what has been written so far, then returns nil. Close it when
	// the container's Writer is closed, so that `logs -f` ends with the
	// container and does not lose its last lines.
	Stop <-chan struct{}

	// pollInterval is how often Follow checks the log for new records;
	// tests make it shorter.
	pollInterval time.Duration
}

// defaultPollInterval is how often Follow checks the log. Docker watches
// with inotify and falls back to polling every 200 ms; a stat and a read
// every 100 ms per follower cost nothing measurable.
const defaultPollInterval = 100 * time.Millisecond

// errUntil ends a read at the first line newer than Until.
var errUntil = errors.New("past until")

// Read calls fn with the lines of the log <dir>/<name>.log and its rotated
// files, oldest first, each joined from its chunks. Lines come in the order
// they ended; a line never ended (output that stopped without a newline)
// counts as ended by its last chunk, except with Follow, where it comes when
// Stop is closed. Records that are not valid JSON (a write torn by a crash or
// a full disk) are skipped. Read
// returns nil when it is done, ctx.Err() if ctx ends first, and the error fn
// returns if it is not nil, which also stops it. A log that does not exist
// yet has no records; with Follow, Read waits for it.
func Read(ctx context.Context, dir, name string, opts ReadOptions, fn func(Record) error) error {
	if err := checkName(name); err != nil {
		return err
	}
	if opts.pollInterval <= 0 {
		opts.pollInterval = defaultPollInterval
	}
	r := &reader{
		ctx:  ctx,
		opts: opts,
		fn:   fn,
		path: filepath.Join(dir, name+".log"),
		pend: make(map[string]*pending),
	}
	err := r.read()
	if errors.Is(err, errUntil) {
		return nil
	}
	return err
}

// reader is the state of one call of Read.
type reader struct {
	ctx  context.Context
	opts ReadOptions
	fn   func(Record) error
	path string

	// pend holds, per stream, the chunks of a line not ended yet.
	pend map[string]*pending
	seq  uint64 // counts records
	// While holding, lines are returned in the order of their last
	// records, a line never ended counting as ended by its last chunk
	// (see release). Following returns lines as they end.
	holding bool
	held    []heldLine
	heldAt  int // held[:heldAt] were delivered
	// ring holds the last Tail lines while the history is read, when
	// collecting is set.
	ring       []Record
	head       int // index of the oldest line in ring once it is full
	collecting bool
	rec        jsonRecord
}

// pending is a line whose last chunk has not been read yet.
type pending struct {
	rec Record
	seq uint64 // of its latest chunk
}

// heldLine is a line that ended, waiting for the lines not ended before it.
type heldLine struct {
	rec Record
	seq uint64 // of its last chunk
}

// maxHeld bounds the lines held back behind a line that is not ended: past
// it they are returned, and the unended line comes after them.
const maxHeld = 10000

// logFile is a log file being read.
type logFile struct {
	f    *os.File
	info os.FileInfo
	off  int64  // where the next read starts
	buf  []byte // bytes read that do not end in '\n' yet
	// skipping is set while the rest of an over-long line is discarded.
	skipping bool
}

func (r *reader) read() error {
	if r.opts.Tail == 0 && !r.opts.Follow {
		return nil
	}
	files, err := r.snapshot()
	if err != nil {
		return err
	}
	defer func() {
		for _, lf := range files {
			lf.f.Close()
		}
	}()

	// The history: from the start, or from where the last Tail lines begin.
	first, off := 0, int64(0)
	if r.opts.Tail >= 0 {
		r.collecting = true
		first, off, err = r.tailStart(files)
		if err != nil {
			return err
		}
	}
	r.holding = true
	for i := first; i < len(files); i++ {
		lf := files[i]
		if i == first {
			lf.off = off
		}
		if err := r.scan(lf); err != nil {
			return err
		}
		if i < len(files)-1 || !r.opts.Follow {
			lf.buf = nil // a rotated file never gets the rest of its last line
		}
	}
	// Without Follow, the lines not ended are done: they take their place
	// among the others. With Follow, they may still end, and come when they
	// do; the lines held behind them come now.
	if err := r.release(true, !r.opts.Follow); err != nil {
		return err
	}
	r.holding = false
	if r.collecting {
		r.collecting = false
		for i := range r.ring {
			if err := r.deliver(r.ring[(r.head+i)%len(r.ring)]); err != nil {
				return err
			}
		}
		r.ring = nil
	}
	if !r.opts.Follow {
		return nil
	}

	// Only the current file is read from now on.
	var cur *logFile
	if len(files) > 0 {
		cur = files[len(files)-1]
		for _, lf := range files[:len(files)-1] {
			lf.f.Close()
		}
		files = nil
	}
	defer func() {
		if cur != nil {
			cur.f.Close()
		}
	}()
	return r.follow(&cur)
}

// follow reads *cur as it grows, moving to the next file when it is rotated.
func (r *reader) follow(cur **logFile) error {
	ticker := time.NewTicker(r.opts.pollInterval)
	defer ticker.Stop()
	stopping := false
	for {
		lf := *cur
		if lf != nil {
			if st, err := lf.f.Stat(); err == nil && st.Size() < lf.off {
				// Truncated by someone else (logrotate's copytruncate):
				// start over.
				lf.off, lf.buf, lf.skipping = 0, nil, false
			}
			if err := r.scan(lf); err != nil {
				return err
			}
		}
		st, err := os.Stat(r.path)
		live := lf != nil && err == nil && os.SameFile(st, lf.info)
		if !live {
			// The file was rotated (or never existed): the writer no longer
			// writes to it, so what was read of it is all there is.
			if lf != nil {
				if err := r.scan(lf); err != nil {
					return err
				}
			}
			next, err := r.successor(lf)
			if err != nil {
				return err
			}
			if next != nil {
				if lf != nil {
					lf.f.Close()
				}
				*cur = next
				continue
			}
		}
		if stopping {
			return r.flush()
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-r.opts.Stop:
			// Read once more: what was written before Stop was closed.
			stopping = true
		case <-ticker.C:
		}
	}
}

// snapshot opens the rotated files and the current file, oldest first. A
// rotation while they are opened would make the set inconsistent (a file
// seen twice, or none at a name), so the names are checked again afterwards
// and the whole is retried.
func (r *reader) snapshot() ([]*logFile, error) {
	for attempt := 0; ; attempt++ {
		ns, err := rotatedFiles(r.path)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(ns)+1)
		for _, n := range slices.Backward(ns) {
			names = append(names, rotatedName(r.path, n))
		}
		names = append(names, r.path)

		var files []*logFile
		var opened []string
		closeAll := func() {
			for _, lf := range files {
				lf.f.Close()
			}
		}
		// Newest first: a rotation then moves a file we have opened to a
		// name we have yet to open, which the check below notices.
		for i := len(names) - 1; i >= 0; i-- {
			lf, err := openLog(names[i])
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				closeAll()
				return nil, err
			}
			files = append(files, lf)
			opened = append(opened, names[i])
		}
		slices.Reverse(files)
		slices.Reverse(opened)

		consistent := true
		if ns2, err := rotatedFiles(r.path); err != nil || !slices.Equal(ns, ns2) {
			consistent = false
		}
		for i := 0; consistent && i < len(files); i++ {
			st, err := os.Stat(opened[i])
			consistent = err == nil && os.SameFile(st, files[i].info)
		}
		if consistent {
			return files, nil
		}
		if attempt == 10 {
			// Rotating all the time: go with what we have, without
			// reading any file twice.
			var unique []*logFile
			for _, lf := range files {
				if slices.ContainsFunc(unique, func(u *logFile) bool { return os.SameFile(u.info, lf.info) }) {
					lf.f.Close()
					continue
				}
				unique = append(unique, lf)
			}
			return unique, nil
		}
		closeAll()
	}
}

// successor opens the file that follows cur, the file being read when it
// stopped being the current file: the rotated file numbered one less, or the
// current file. If cur is nil (there was no log) or was deleted by rotation
// before it could be found, that is the oldest file there is. It returns nil
// if there is no such file yet.
//
// Names are worked out from numbers, not from the directory listing: a
// listing taken while files are renamed can miss one, and following it would
// skip that file.
func (r *reader) successor(cur *logFile) (*logFile, error) {
	const attempts = 20
	for attempt := 1; ; attempt++ {
		at := -1 // cur is the file <path>.at
		if cur != nil {
			n, err := r.locate(cur)
			if err != nil {
				return nil, err
			}
			at = n
			if at < 0 && !unlinked(cur.f) && attempt < attempts {
				// cur still exists: a rotation is moving it to
				// another name right now. Look again.
				continue
			}
		}
		var name string
		switch {
		case at == 1:
			name = r.path
		case at > 1:
			name = rotatedName(r.path, at-1)
		default:
			var err error
			if name, err = r.oldest(); err != nil {
				return nil, err
			}
		}
		next, err := openLog(name)
		if errors.Is(err, fs.ErrNotExist) {
			if at > 0 && attempt < attempts {
				continue // a rotation is between two renames
			}
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if cur != nil && os.SameFile(next.info, cur.info) {
			next.f.Close()
			return nil, nil
		}
		if at > 0 {
			// If cur has not moved, the file next to it had not moved
			// either when it was opened: rotations move the older files
			// first.
			st, err := os.Stat(rotatedName(r.path, at))
			if err != nil || !os.SameFile(st, cur.info) {
				next.f.Close()
				if attempt < attempts {
					continue
				}
				return nil, nil
			}
		}
		return next, nil
	}
}

// locate returns n such that lf is the file <path>.n, or -1.
func (r *reader) locate(lf *logFile) (int, error) {
	ns, err := rotatedFiles(r.path)
	if err != nil {
		return -1, err
	}
	for _, n := range ns {
		if st, err := os.Stat(rotatedName(r.path, n)); err == nil && os.SameFile(st, lf.info) {
			return n, nil
		}
	}
	return -1, nil
}

// oldest returns the name of the oldest log file.
func (r *reader) oldest() (string, error) {
	ns, err := rotatedFiles(r.path)
	if err != nil || len(ns) == 0 {
		return r.path, err
	}
	// The listing may have missed the last file if it was being renamed.
	n := ns[len(ns)-1]
	for {
		if _, err := os.Stat(rotatedName(r.path, n+1)); err != nil {
			return rotatedName(r.path, n), nil
		}
		n++
	}
}

func openLog(name string) (*logFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("logs: opening log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("logs: opening log file: %w", err)
	}
	return &logFile{f: f, info: st}, nil
}

// scan reads lf from lf.off to its end and handles every complete line. An
// incomplete last line stays in lf.buf.
func (r *reader) scan(lf *logFile) error {
	const block = 64 << 10
	for {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if cap(lf.buf)-len(lf.buf) < block {
			lf.buf = slices.Grow(lf.buf, block)
		}
		m, err := lf.f.ReadAt(lf.buf[len(lf.buf):len(lf.buf)+block], lf.off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("logs: reading %s: %w", lf.f.Name(), err)
		}
		lf.off += int64(m)
		data := lf.buf[:len(lf.buf)+m]
		start := 0
		for {
			i := bytes.IndexByte(data[start:], '\n')
			if i < 0 {
				break
			}
			line := data[start : start+i]
			start += i + 1
			if lf.skipping || len(line) > maxRecord {
				lf.skipping = false
				continue
			}
			if err := r.process(line); err != nil {
				return err
			}
		}
		rest := data[start:]
		if len(rest) > maxRecord {
			rest, lf.skipping = rest[:0], true
		}
		lf.buf = append(lf.buf[:0], rest...)
		if m == 0 {
			return nil
		}
	}
}

// process handles one line of a log file.
func (r *reader) process(line []byte) error {
	if !decodeRecord(line, &r.rec) {
		return nil
	}
	p := r.pend[r.rec.Stream]
	if p == nil {
		p = &pending{rec: Record{Time: r.rec.Time.UTC(), Stream: r.rec.Stream}}
		r.pend[r.rec.Stream] = p
	}
	p.rec.Line = append(p.rec.Line, r.rec.Log...)
	r.seq++
	p.seq = r.seq
	if r.rec.ends() || len(p.rec.Line) >= maxLine {
		delete(r.pend, r.rec.Stream)
		if !r.holding {
			return r.deliver(p.rec)
		}
		r.held = append(r.held, heldLine{p.rec, p.seq})
	}
	if r.holding {
		return r.release(false, false)
	}
	return nil
}

// release delivers the held lines that no pending line can come before:
// those that ended before the oldest last chunk of a pending line. With all
// set, it delivers every held line; with final set too, the pending lines are
// done, and are delivered as well, each in the place of its last chunk.
func (r *reader) release(all, final bool) error {
	oldest := uint64(math.MaxUint64)
	var ps []*pending
	for _, p := range r.pend {
		oldest = min(oldest, p.seq)
		if final {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *pending) int { return cmp.Compare(a.seq, b.seq) })
	for r.heldAt < len(r.held) || len(ps) > 0 {
		if len(ps) > 0 && (r.heldAt == len(r.held) || ps[0].seq < r.held[r.heldAt].seq) {
			delete(r.pend, ps[0].rec.Stream)
			if err := r.deliver(ps[0].rec); err != nil {
				return err
			}
			ps = ps[1:]
			continue
		}
		h := r.held[r.heldAt]
		if !all && h.seq > oldest && len(r.held)-r.heldAt <= maxHeld {
			break
		}
		r.held[r.heldAt] = heldLine{}
		r.heldAt++
		if err := r.deliver(h.rec); err != nil {
			return err
		}
	}
	if r.heldAt > len(r.held)/2 {
		r.held = r.held[:copy(r.held, r.held[r.heldAt:])]
		r.heldAt = 0
	}
	return nil
}

// flush delivers the lines that were never ended, in the order of their
// last chunks.
func (r *reader) flush() error {
	return r.release(true, true)
}

// deliver passes a line to fn, or keeps it while the last Tail lines of the
// history are collected.
func (r *reader) deliver(rec Record) error {
	if r.collecting {
		switch {
		case len(r.ring) < r.opts.Tail:
			r.ring = append(r.ring, rec)
		case r.opts.Tail > 0:
			r.ring[r.head] = rec
			r.head = (r.head + 1) % len(r.ring)
		}
		return nil
	}
	if !r.opts.Since.IsZero() && rec.Time.Before(r.opts.Since) {
		return nil
	}
	if !r.opts.Until.IsZero() && rec.Time.After(r.opts.Until) {
		return errUntil
	}
	return r.fn(rec)
}
