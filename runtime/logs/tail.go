package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// tailStart finds where to start reading files so that the last Tail lines
// are read whole, without decoding everything before them: `logs --tail 10`
// of 100 MB of logs reads a few blocks. It walks the records backwards,
// counting the lines they end, until it has Tail lines and has found, for
// every stream with a line among them, the record that ends the stream's
// previous line, so that the chunks of each line are all read. It returns
// the index of a file in files and an offset in it; lines read from there
// that are older than the last Tail are dropped by the ring in deliver.
//
// When following, a line not ended yet is not among the Tail lines but will
// be returned once it ends, so its chunks are needed too, even those before
// the Tail lines. The walk goes on for them until it has seen both stdout
// and stderr, or for at most maxLine more bytes: a line longer than that is
// returned in pieces anyway.
func (r *reader) tailStart(files []*logFile) (int, int64, error) {
	const (
		unseen = iota
		open   // a line of the stream is needed, its start not found yet
		closed // the stream has no (more) lines that are needed
	)
	state := make(map[string]int)
	lines, opens := 0, 0
	startFile, startOff := -1, int64(0) // found start, if startFile >= 0
	lastFile, lastOff := 0, int64(0)    // the record read last
	extending, scanned := false, 0
	for i := len(files) - 1; i >= 0; i-- {
		st, err := files[i].f.Stat()
		if err != nil {
			return 0, 0, fmt.Errorf("logs: reading %s: %w", files[i].f.Name(), err)
		}
		stopped, err := reverseLines(files[i], st.Size(), func(line []byte, off int64) bool {
			if extending {
				if scanned += len(line) + 1; scanned > maxLine {
					return true
				}
			}
			lastFile, lastOff = i, off
			if !decodeRecord(line, &r.rec) {
				return false
			}
			s := r.rec.Stream
			closes := r.rec.ends() && state[s] == open
			switch {
			case r.rec.ends():
				if closes {
					opens-- // this record ends the line before the open one
				}
				if lines < r.opts.Tail {
					lines++
					state[s] = open
					opens++
				} else {
					state[s] = closed
				}
			case state[s] == unseen:
				// The stream's last line is not ended: it counts as
				// ended by this chunk, unless following, where it is
				// returned once it ends. Either way its start is needed.
				if !r.opts.Follow {
					lines++
				}
				state[s] = open
				opens++
			}
			if lines < r.opts.Tail || opens > 0 {
				return false
			}
			if !extending || closes {
				startFile, startOff = i, off+int64(len(line))+1
			}
			if !r.opts.Follow {
				return true
			}
			extending = true
			return state["stdout"] != unseen && state["stderr"] != unseen
		})
		if err != nil {
			return 0, 0, err
		}
		if stopped {
			if opens > 0 {
				// Out of budget: start with the oldest chunk found.
				return lastFile, lastOff, nil
			}
			return startFile, startOff, nil
		}
	}
	if opens > 0 || startFile < 0 {
		return 0, 0, nil
	}
	return startFile, startOff, nil
}

// reverseLines calls fn with the lines of lf that end before offset end, last
// first, and the offset of each, until fn returns true; it reports whether
// fn did. Bytes after the last '\n' (a record being written) are not a line.
// A line longer than maxRecord is skipped.
func reverseLines(lf *logFile, end int64, fn func(line []byte, off int64) bool) (bool, error) {
	const block = 64 << 10
	buf := make([]byte, block)
	var acc, tmp []byte // the part of the current line in blocks read before
	found := false      // whether the '\n' ending the current line was seen
	tooLong := false
	pos := end
	for pos > 0 {
		n := int64(block)
		if pos < n {
			n = pos
		}
		pos -= n
		b := buf[:n]
		if _, err := lf.f.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("logs: reading %s: %w", lf.f.Name(), err)
		}
		i := len(b)
		for {
			j := bytes.LastIndexByte(b[:i], '\n')
			if j < 0 {
				break
			}
			if found && !tooLong {
				line := b[j+1 : i]
				if len(acc) > 0 {
					tmp = append(append(tmp[:0], line...), acc...)
					line = tmp
				}
				if len(line) <= maxRecord && fn(line, pos+int64(j)+1) {
					return true, nil
				}
			}
			found, tooLong, acc, i = true, false, acc[:0], j
		}
		if found && !tooLong {
			if len(acc)+i > maxRecord {
				tooLong = true
			} else {
				tmp = append(append(tmp[:0], b[:i]...), acc...)
				acc, tmp = tmp, acc
			}
		}
	}
	if found && !tooLong && len(acc) > 0 {
		return fn(acc, 0), nil
	}
	return false, nil
}
