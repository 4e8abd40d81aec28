package supervisor

import (
	"time"

	"github.com/berth-dev/berth/runtime/spec"
)

// Docker's health check defaults and limits.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	maxProbeOutput       = 4096 // bytes of a probe's output kept
	probeLogSize         = 5    // results kept
)

// Health statuses, as Docker names them.
const (
	Starting  = "starting"
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
)

// ProbeResult is one run of a health check's command.
type ProbeResult struct {
	Start, End time.Time
	// ExitCode is the probe's: 0 is healthy, anything else a failure; -1
	// when it ran past its timeout and was killed.
	ExitCode int
	Output   string
}

// Health is a container's health as its probes tell it, Docker's health
// monitor in miniature: starting until the first success (or until
// Retries consecutive failures after the start period), healthy after a
// success, unhealthy after Retries consecutive failures. Not safe for
// concurrent use.
type Health struct {
	cfg     spec.Healthcheck
	started time.Time // the container's start

	Status        string
	FailingStreak int
	Log           []ProbeResult // the last five, oldest first
}

// NewHealth starts watching a container started at started.
func NewHealth(cfg spec.Healthcheck, started time.Time) *Health {
	if cfg.Interval == 0 {
		cfg.Interval = defaultProbeInterval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultProbeTimeout
	}
	if cfg.StartInterval == 0 {
		cfg.StartInterval = defaultStartInterval
	}
	if cfg.Retries == 0 {
		cfg.Retries = defaultProbeRetries
	}
	return &Health{cfg: cfg, started: started, Status: Starting}
}

// Timeout is how long a probe may run before it is killed and counted as
// a failure.
func (h *Health) Timeout() time.Duration { return h.cfg.Timeout }

// Next is how long to wait, at now, before the next probe: the start
// interval while the container is in its start period and not yet
// healthy, the interval otherwise.
func (h *Health) Next(now time.Time) time.Duration {
	if h.Status == Starting && now.Before(h.started.Add(h.cfg.StartPeriod)) {
		return h.cfg.StartInterval
	}
	return h.cfg.Interval
}

// Record takes a probe's result and reports whether the status changed.
// A failure inside the start period does not count, unless the container
// was healthy already; a success makes it healthy; Retries failures in a
// row make it unhealthy.
func (h *Health) Record(r ProbeResult) bool {
	if len(r.Output) > maxProbeOutput {
		r.Output = r.Output[:maxProbeOutput]
	}
	h.Log = append(h.Log, r)
	if len(h.Log) > probeLogSize {
		h.Log = h.Log[len(h.Log)-probeLogSize:]
	}
	before := h.Status
	if r.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = Healthy
		return before != h.Status
	}
	if h.Status == Starting && r.Start.Before(h.started.Add(h.cfg.StartPeriod)) {
		return false
	}
	h.FailingStreak++
	if h.FailingStreak >= h.cfg.Retries {
		h.Status = Unhealthy
	}
	return before != h.Status
}
