package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// DroppedError is returned by [Copy] when some of the output it read could
// not be written to the log: the disk was full, say. Copy keeps reading
// whatever happens to the writes, so a DroppedError never means the
// container was blocked.
type DroppedError struct {
	Stream  string
	Records int64 // records that were not written
	Bytes   int64 // bytes of output in them
	Err     error // the first write error
}

func (e *DroppedError) Error() string {
	return fmt.Sprintf("logs: %s: dropped %d records (%d bytes) of output: %v", e.Stream, e.Records, e.Bytes, e.Err)
}

func (e *DroppedError) Unwrap() error { return e.Err }

// copyBufStart is the size of Copy's buffer at first.
const copyBufStart = 512

// Copy reads a container's stdout or stderr from r (a pipe, a FIFO or a pty)
// and writes it to w as records of stream, one per line, until r ends or ctx
// is done. A line is stamped with the time its first byte was seen. Output
// that does not end in '\n' is written at the end without "\n"; so is what
// Copy holds when ctx ends.
//
// Like Docker, Copy splits on '\n' only: a pty's "\r\n" is kept, so a tty
// container's records end in "\r\n" exactly as Docker's do.
//
// A failed write never stops Copy: it keeps reading, so that the container
// never blocks on a full pipe, and it returns a *DroppedError counting what
// was lost and naming the first error once r ends. Copy returns nil when r
// ends (io.EOF, or EIO from a pty whose other side closed), ctx.Err() when ctx
// ends, and a read error otherwise; errors.Join combines it with a
// *DroppedError.
//
// Ending ctx interrupts a blocked read only if r has a SetReadDeadline method
// (an *os.File for a pipe, FIFO or pty does); otherwise Copy stops after the
// next read returns. The deadline is cleared when Copy returns.
func Copy(ctx context.Context, r io.Reader, stream string, w *Writer) error {
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			d.SetReadDeadline(time.Unix(1, 0))
		})
		defer func() {
			if !stop() {
				<-fired
				d.SetReadDeadline(time.Time{})
			}
		}()
	}

	c := copier{w: w, stream: stream}
	// The buffer starts small and doubles whenever a read fills it, up to
	// one byte more than a chunk, so that a line of exactly maxChunk bytes
	// and its '\n' fit and make a single record. A supervisor copies two
	// streams of every container, most of which say little: 16 KiB each
	// from the start was 1.6 MiB of its memory with 50 containers.
	buf := make([]byte, copyBufStart)
	n := 0
	for {
		if ctx.Err() != nil {
			c.write(buf[:n], false)
			return errors.Join(ctx.Err(), c.dropped())
		}
		m, rerr := r.Read(buf[n:])
		n += m
		filled := n == len(buf)
		p := 0
		for {
			i := bytes.IndexByte(buf[p:n], '\n')
			if i < 0 {
				break
			}
			c.write(buf[p:p+i], true)
			p += i + 1
		}
		if p == 0 && n == len(buf) && len(buf) == maxChunk+1 {
			p = cutChunk(buf[:n])
			c.write(buf[:p], false)
		}
		n = copy(buf, buf[p:n])
		if filled && len(buf) < maxChunk+1 {
			grown := make([]byte, min(2*len(buf), maxChunk+1))
			copy(grown, buf[:n])
			buf = grown
		}
		if rerr != nil {
			c.write(buf[:n], false)
			return errors.Join(c.readErr(ctx, rerr), c.dropped())
		}
	}
}

// copier writes the records of one stream for Copy and counts what it
// could not write.
type copier struct {
	w      *Writer
	stream string
	// started is the time of the first chunk of a line cut into chunks;
	// the other chunks get the same time, as Docker's copier does.
	started time.Time

	records, bytes int64
	err            error
}

// write writes text as a record; newline says whether it ends a line.
func (c *copier) write(text []byte, newline bool) {
	if len(text) == 0 && !newline {
		return
	}
	t := c.started
	if t.IsZero() {
		t = time.Now().UTC()
	}
	if newline {
		c.started = time.Time{}
	} else {
		c.started = t
	}
	if err := c.w.writeRecord(c.stream, t, text, newline); err != nil {
		c.records++
		c.bytes += int64(len(text))
		if newline {
			c.bytes++
		}
		if c.err == nil {
			c.err = err
		}
	}
}

// dropped returns a *DroppedError if a write failed, or nil.
func (c *copier) dropped() error {
	if c.err == nil {
		return nil
	}
	return &DroppedError{Stream: c.stream, Records: c.records, Bytes: c.bytes, Err: c.err}
}

// readErr says what Copy returns for the read error err.
func (c *copier) readErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, syscall.EIO):
		// Reading the master of a pty whose slave side is closed fails
		// with EIO on Linux: that is the end of the container's output.
		return nil
	case ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return ctx.Err()
	}
	return fmt.Errorf("logs: reading %s: %w", c.stream, err)
}
