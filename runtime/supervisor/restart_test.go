package supervisor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/spec"
)

// exit is one exit of a container: its code and how long it ran.
type exit struct {
	code int
	ran  time.Duration
}

func TestRestarter(t *testing.T) {
	crash := exit{1, time.Second}
	clean := exit{0, time.Second}
	long := exit{1, 15 * time.Second}
	for _, tc := range []struct {
		policy spec.Restart
		exits  []exit
		want   string // per exit: the delay, or "no"
	}{
		{spec.Restart{Policy: "no"}, []exit{crash}, "no"},
		{spec.Restart{}, []exit{crash}, "no"},
		{spec.Restart{Policy: "always"}, []exit{clean, crash, crash, crash}, "100ms 200ms 400ms 800ms"},
		// The back-off doubles up to a minute.
		{spec.Restart{Policy: "always"}, repeat(crash, 12), "100ms 200ms 400ms 800ms 1.6s 3.2s 6.4s 12.8s 25.6s 51.2s 1m0s 1m0s"},
		// A run of 10 s or more starts the back-off over.
		{spec.Restart{Policy: "unless-stopped"}, []exit{crash, crash, crash, long, crash}, "100ms 200ms 400ms 100ms 200ms"},
		// on-failure: not after a clean exit; N counts restarts.
		{spec.Restart{Policy: "on-failure"}, []exit{crash, clean}, "100ms no"},
		{spec.Restart{Policy: "on-failure", MaxRetries: 2}, []exit{crash, crash, crash}, "100ms 200ms no"},
	} {
		t.Run(fmt.Sprintf("%+v", tc.policy), func(t *testing.T) {
			r := NewRestarter(tc.policy)
			var got []string
			for _, e := range tc.exits {
				if ok, d := r.Exited(e.code, e.ran); ok {
					got = append(got, d.String())
				} else {
					got = append(got, "no")
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %s, want %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func repeat(e exit, n int) []exit {
	out := make([]exit, n)
	for i := range out {
		out[i] = e
	}
	return out
}

// TestRestarterManualStop: a stop by the user suspends always and
// unless-stopped until the next start, which also resets the count.
func TestRestarterManualStop(t *testing.T) {
	r := NewRestarter(spec.Restart{Policy: "always"})
	r.Exited(1, time.Second)
	r.Stopped()
	if ok, _ := r.Exited(137, time.Second); ok {
		t.Error("restarts after a manual stop")
	}
	if !r.StartsAfterReboot() {
		t.Error("always does not come back after a reboot")
	}
	r.Started()
	if ok, d := r.Exited(1, time.Second); !ok || d != firstRestartDelay || r.Count() != 1 {
		t.Errorf("after a start: %v %v, count %d", ok, d, r.Count())
	}

	u := NewRestarter(spec.Restart{Policy: "unless-stopped"})
	if !u.StartsAfterReboot() {
		t.Error("unless-stopped, never stopped, does not come back after a reboot")
	}
	u.Stopped()
	if u.StartsAfterReboot() {
		t.Error("unless-stopped, stopped by the user, comes back after a reboot")
	}
	if NewRestarter(spec.Restart{Policy: "on-failure"}).StartsAfterReboot() {
		t.Error("on-failure comes back after a reboot")
	}
}
