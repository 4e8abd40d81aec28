package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The protocol between the CLI and the supervisor: one JSON object per
// line on the project's unix socket. The CLI sends a Request and reads one
// Response; for "events" the supervisor then sends an Event per line until
// the CLI hangs up.

// Operations a Request asks for.
const (
	OpPing   = "ping"   // is it there; answers with its pid
	OpStart  = "start"  // start a created or stopped container and watch it
	OpStop   = "stop"   // stop it (the restart policy stays off until the next start)
	OpKill   = "kill"   // send it a signal (the restart policy stays off too)
	OpRemove = "remove" // stop it, forget it and delete it
	OpEvents = "events" // stream the project's events
	OpPause  = "pause"  // freeze its processes
	OpResume = "unpause"
	// OpReclaim frees, in the background, storage that nothing uses any
	// more (Options.Reclaim); it answers at once.
	OpReclaim = "reclaim"
	// OpHold keeps the supervisor from leaving while the connection is
	// open: it answers at once, as ping, then waits for the CLI to hang
	// up (Client.Hold).
	OpHold = "hold"
)

// maxMessage bounds a line of the protocol: a request is small, and a peer
// that sends more is not berth.
const maxMessage = 64 << 10

// Request is what the CLI asks of the supervisor.
type Request struct {
	Op string `json:"op"`
	// ID is the container's.
	ID string `json:"id,omitempty"`
	// Timeout overrides the container's stop grace period (stop, remove).
	Timeout *Duration `json:"timeout,omitempty"`
	// Signal is kill's, by name ("SIGKILL", "KILL") or number.
	Signal string `json:"signal,omitempty"`
}

// Response is the supervisor's answer to a Request.
type Response struct {
	// Error is why the request failed; empty when it did not.
	Error string `json:"error,omitempty"`
	// Kind classifies Error as the CLI reports it: "not-found",
	// "failed-precondition", "invalid-argument", or empty.
	Kind string `json:"kind,omitempty"`
	Pid  int    `json:"pid,omitempty"`
	// ExitCode is the container's, after stop or remove.
	ExitCode int `json:"exitCode,omitempty"`
}

// Event is something that happened to a container of the project, as
// `berth events --json` prints it (docker compose's fields).
type Event struct {
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"` // "container"
	Action     string            `json:"action"`
	ID         string            `json:"id"`
	Service    string            `json:"service,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Duration is a time.Duration on the wire, in nanoseconds.
type Duration int64

// Std is d as a time.Duration, nil when d is nil.
func (d *Duration) Std() *time.Duration {
	if d == nil {
		return nil
	}
	t := time.Duration(*d)
	return &t
}

// DurationOf is t for a Request, nil when t is nil.
func DurationOf(t *time.Duration) *Duration {
	if t == nil {
		return nil
	}
	d := Duration(*t)
	return &d
}

// errTooLong is a line past maxMessage.
var errTooLong = errors.New("message too long")

// readMessage reads one line from r and decodes it into v. A line longer
// than maxMessage, a line that is not one JSON object, or unknown fields
// are errors: the peer is not the berth it claims to be.
func readMessage(r *bufio.Reader, v any) error {
	line, err := readLine(r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding a message: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("decoding a message: more than one object on a line")
	}
	return nil
}

// readLine reads up to and without the next '\n', at most maxMessage
// bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxMessage {
			return nil, errTooLong
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// writeMessage writes v as one line.
func writeMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
