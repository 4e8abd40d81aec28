package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
)

// Client talks to a project's supervisor.
type Client struct {
	sock  string
	spawn func(context.Context) error
	mu    sync.Mutex // one spawn at a time
}

// NewClient returns a client of the supervisor of the project whose
// runtime directory is dir. spawn starts a supervisor (detached) when none
// answers; requests then wait for it to listen.
func NewClient(dir string, spawn func(context.Context) error) *Client {
	return &Client{sock: SocketPath(dir), spawn: spawn}
}

// spawnWait is how long a client waits for a supervisor it started.
const spawnWait = 10 * time.Second

// dial connects to the supervisor, starting one if none listens.
func (c *Client) dial(ctx context.Context) (*net.UnixConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.sock)
	if err == nil {
		return conn.(*net.UnixConn), nil
	}
	if c.spawn == nil {
		return nil, fmt.Errorf("the project's supervisor is not running: %w", err)
	}
	// Requests made at once (a level of `up`) start one supervisor.
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, err := d.DialContext(ctx, "unix", c.sock); err == nil {
		return conn.(*net.UnixConn), nil
	}
	if err := c.spawn(ctx); err != nil {
		return nil, fmt.Errorf("starting the project's supervisor: %w", err)
	}
	deadline := time.Now().Add(spawnWait)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		conn, err := d.DialContext(ctx, "unix", c.sock)
		if err == nil {
			return conn.(*net.UnixConn), nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the project's supervisor did not start listening within %v: %w", spawnWait, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// call sends req and reads the response. A supervisor that was leaving as
// the request came (it hung up before reading it) is replaced and asked
// again.
func (c *Client) call(ctx context.Context, req Request) (Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.callOnce(ctx, req)
		if err != nil && attempt == 0 && ctx.Err() == nil &&
			(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, errHungUp)) {
			continue
		}
		return resp, err
	}
}

var errHungUp = errors.New("the supervisor hung up")

func (c *Client) callOnce(ctx context.Context, req Request) (Response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return Response{}, err
	}
	defer conn.Close()
	// The request goes on in the supervisor when ctx ends (a stop half
	// done helps no one); only the wait for its answer stops.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := writeMessage(conn, req); err != nil {
		return Response{}, fmt.Errorf("asking the supervisor: %w", err)
	}
	var resp Response
	if err := readMessage(bufio.NewReader(conn), &resp); err != nil {
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, errTooLong) {
			return Response{}, err
		}
		return Response{}, fmt.Errorf("%w: %w", errHungUp, err)
	}
	if resp.Error != "" {
		return resp, responseError(resp)
	}
	return resp, nil
}

// responseError is the error a response carries, classified again.
func responseError(r Response) error {
	var kind error
	switch r.Kind {
	case "not-found":
		kind = errdefs.ErrNotFound
	case "failed-precondition":
		kind = errdefs.ErrFailedPrecondition
	case "invalid-argument":
		kind = errdefs.ErrInvalidArgument
	case "permission-denied":
		kind = errdefs.ErrPermissionDenied
	default:
		return errors.New(r.Error)
	}
	return &remoteError{msg: r.Error, kind: kind}
}

type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// Ping makes sure the supervisor runs and returns its pid.
func (c *Client) Ping(ctx context.Context) (int, error) {
	r, err := c.call(ctx, Request{Op: OpPing})
	return r.Pid, err
}

// Reclaim asks the supervisor to free, in the background, storage that
// nothing uses any more; it returns at once.
func (c *Client) Reclaim(ctx context.Context) error {
	_, err := c.call(ctx, Request{Op: OpReclaim})
	return err
}

// Start starts a created or stopped container; the supervisor then
// watches it (restart policy, health check, log).
func (c *Client) Start(ctx context.Context, id string) error {
	_, err := c.call(ctx, Request{Op: OpStart, ID: id})
	return err
}

// Stop stops a container with its stop signal, killing it after timeout
// (its stop grace period when nil), and returns its exit code.
func (c *Client) Stop(ctx context.Context, id string, timeout *time.Duration) (int, error) {
	r, err := c.call(ctx, Request{Op: OpStop, ID: id, Timeout: DurationOf(timeout)})
	return r.ExitCode, err
}

// Kill sends a container a signal (SIGKILL when empty).
func (c *Client) Kill(ctx context.Context, id, signal string) error {
	_, err := c.call(ctx, Request{Op: OpKill, ID: id, Signal: signal})
	return err
}

// Pause freezes a container's processes; Resume thaws them.
func (c *Client) Pause(ctx context.Context, id string) error {
	_, err := c.call(ctx, Request{Op: OpPause, ID: id})
	return err
}

func (c *Client) Resume(ctx context.Context, id string) error {
	_, err := c.call(ctx, Request{Op: OpResume, ID: id})
	return err
}

// Remove stops a container (timeout as for Stop) and deletes it.
func (c *Client) Remove(ctx context.Context, id string, timeout *time.Duration) error {
	_, err := c.call(ctx, Request{Op: OpRemove, ID: id, Timeout: DurationOf(timeout)})
	return err
}

// Hold starts the project's supervisor in the background when none runs
// and keeps it from leaving until release is called. A command that will
// soon start containers (up) calls it before it prepares them, so that
// the supervisor starts meanwhile rather than when the first container is
// to start: a supervisor takes ~90 ms to start listening on the build
// machines. It reports no error: the requests that follow do.
//
// A supervisor that goes away while held (killed) is replaced at once:
// the new one adopts the project's containers, so that what the command
// waits for (a health check that gates a dependant) goes on happening.
func (c *Client) Hold(ctx context.Context) (release func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
			conn, err := c.dial(ctx)
			if err != nil {
				return
			}
			if writeMessage(conn, Request{Op: OpHold}) == nil {
				// The supervisor answers, then reads until either side
				// hangs up: the read ends when the supervisor goes away.
				stop := context.AfterFunc(ctx, func() { conn.Close() })
				io.Copy(io.Discard, conn)
				stop()
			}
			conn.Close()
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// Events calls fn with each event of the project until ctx ends or fn
// returns an error.
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := writeMessage(conn, Request{Op: OpEvents}); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	var resp Response
	if err := readMessage(r, &resp); err != nil {
		return err
	}
	if resp.Error != "" {
		return responseError(resp)
	}
	for {
		var e Event
		if err := readMessage(r, &e); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading events: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
