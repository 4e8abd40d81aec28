package supervisor

import (
	"time"

	"github.com/berth-dev/berth/runtime/spec"
)

// Docker's restart back-off: the first restart waits 100 ms, each next one
// twice as long, at most a minute; a run of 10 s or more starts over.
const (
	firstRestartDelay = 100 * time.Millisecond
	maxRestartDelay   = time.Minute
	resetAfterRunning = 10 * time.Second
)

// Restarter applies a container's restart policy, as Docker's restart
// manager does. It is not safe for concurrent use: one per container, in
// the goroutine that watches it.
type Restarter struct {
	policy   spec.Restart
	count    int           // restarts so far (on-failure's N counts these)
	delay    time.Duration // the last wait; 0 before the first restart
	stopped  bool          // stopped by the user: no restart until started
	canceled bool
}

// NewRestarter returns the restarter of a policy.
func NewRestarter(p spec.Restart) *Restarter { return &Restarter{policy: p} }

// RestoreRestarter returns the restarter of a policy as a supervisor that
// went away left it: its count, its last delay, a stop by the user.
func RestoreRestarter(p spec.Restart, count int, delay time.Duration, stopped bool) *Restarter {
	return &Restarter{policy: p, count: count, delay: delay, stopped: stopped}
}

// Delay is the last back-off delay; 0 before the first restart.
func (r *Restarter) Delay() time.Duration { return r.delay }

// IsStopped reports whether the user stopped the container.
func (r *Restarter) IsStopped() bool { return r.stopped }

// Exited decides, when the container's process exited with code after
// running for ran, whether it starts again and after how long. A
// container whose start failed (code 127/126, a port taken, ...) must not
// be passed here: failing to start is not an exit, and restarting it
// would loop.
func (r *Restarter) Exited(code int, ran time.Duration) (bool, time.Duration) {
	if r.stopped || r.canceled {
		return false, 0
	}
	switch r.policy.Policy {
	case "always", "unless-stopped":
	case "on-failure":
		if code == 0 {
			return false, 0
		}
		if r.policy.MaxRetries > 0 && r.count >= r.policy.MaxRetries {
			return false, 0
		}
	default:
		return false, 0
	}
	if ran >= resetAfterRunning || r.delay == 0 {
		r.delay = firstRestartDelay
	} else {
		r.delay = min(2*r.delay, maxRestartDelay)
	}
	r.count++
	return true, r.delay
}

// Stopped records a stop or kill by the user: always and unless-stopped
// no longer restart the container until it is started again.
func (r *Restarter) Stopped() { r.stopped = true }

// Started records an explicit start: the policy applies again, its count
// and back-off from zero.
func (r *Restarter) Started() {
	r.stopped, r.count, r.delay = false, 0, 0
}

// Count is how many times the container was restarted.
func (r *Restarter) Count() int { return r.count }

// StartsAfterReboot reports whether the policy brings the container back
// when berth's supervisor starts after the host rebooted: always does,
// unless-stopped unless the user had stopped it.
func (r *Restarter) StartsAfterReboot() bool {
	switch r.policy.Policy {
	case "always":
		return true
	case "unless-stopped":
		return !r.stopped
	}
	return false
}
