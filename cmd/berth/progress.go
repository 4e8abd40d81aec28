package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/mattn/go-isatty"

	"github.com/berth-dev/berth/compose"
)

// progressMode is how progress is shown: tty, plain, json or quiet.
func (g *globalOptions) progressMode(w io.Writer, quiet bool) string {
	switch {
	case quiet || g.progress == "quiet" || g.progress == "none":
		return "quiet"
	case g.progress == "json" || g.progress == "plain" || g.progress == "tty":
		return g.progress
	case g.ansi == "never":
		return "plain"
	}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return "tty"
	}
	return "plain"
}

func isTerminal(f *os.File) bool { return isatty.IsTerminal(f.Fd()) }

// pullRenderer shows pull events: on a terminal a line per image, redrawn in
// place; otherwise a line per change of state.
type pullRenderer struct {
	w    io.Writer
	mode string

	mu     sync.Mutex
	order  []string
	state  map[string]compose.PullEvent
	start  map[string]time.Time
	drawn  int
	last   time.Time
	closed bool
}

func newPullRenderer(w io.Writer, mode string) *pullRenderer {
	return &pullRenderer{w: w, mode: mode, state: map[string]compose.PullEvent{}, start: map[string]time.Time{}}
}

func (r *pullRenderer) event(e compose.PullEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, seen := r.state[e.Image]
	if !seen {
		r.order = append(r.order, e.Image)
		r.start[e.Image] = time.Now()
	}
	r.state[e.Image] = e
	switch r.mode {
	case "quiet":
	case "json":
		if e.Status != compose.Pulling || !seen || prev.Status != compose.Pulling || time.Since(r.last) > 200*time.Millisecond {
			r.last = time.Now()
			msg := map[string]any{"image": e.Image, "services": e.Services, "status": string(e.Status)}
			if e.Total > 0 {
				msg["done"], msg["total"] = e.Done, e.Total
			}
			if e.Err != nil {
				msg["error"] = e.Err.Error()
			}
			b, _ := json.Marshal(msg)
			fmt.Fprintf(r.w, "%s\n", b)
		}
	case "tty":
		if e.Status != compose.Pulling || time.Since(r.last) > 100*time.Millisecond {
			r.redraw()
		}
	default:
		if !seen || prev.Status != e.Status {
			fmt.Fprintln(r.w, r.line(e, false))
		}
	}
}

func (r *pullRenderer) line(e compose.PullEvent, tty bool) string {
	var b strings.Builder
	if tty {
		mark := map[compose.PullStatus]string{compose.Pulled: "✔", compose.PullFailed: "✘", compose.PullSkipped: "-"}[e.Status]
		if mark == "" {
			mark = "⠿"
		}
		fmt.Fprintf(&b, " %s ", mark)
	}
	fmt.Fprintf(&b, "%s %s", e.Image, e.Status)
	switch {
	case e.Status == compose.Pulling && e.Total > 0:
		fmt.Fprintf(&b, " %s/%s", units.HumanSizeWithPrecision(float64(e.Done), 3), units.HumanSizeWithPrecision(float64(e.Total), 3))
	case e.Status == compose.PullSkipped && e.Err != nil:
		fmt.Fprintf(&b, " - %s", e.Err)
	case e.Status == compose.PullFailed && e.Err != nil:
		fmt.Fprintf(&b, ": %s", e.Err)
	}
	if tty && (e.Status == compose.Pulled || e.Status == compose.Pulling) {
		fmt.Fprintf(&b, " %.1fs", time.Since(r.start[e.Image]).Seconds())
	}
	return b.String()
}

// redraw rewrites the lines drawn so far (cursor up, clear line).
func (r *pullRenderer) redraw() {
	r.last = time.Now()
	var b strings.Builder
	if r.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", r.drawn)
	}
	for _, img := range r.order {
		b.WriteString("\x1b[2K")
		b.WriteString(r.line(r.state[img], true))
		b.WriteString("\n")
	}
	r.drawn = len(r.order)
	io.WriteString(r.w, b.String())
}

func (r *pullRenderer) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == "tty" && !r.closed {
		r.redraw()
	}
	r.closed = true
}
