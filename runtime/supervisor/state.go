package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// State is what the supervisor knows of the project's containers beyond
// the runtime's records: health, restarts, a stop by the user. It writes it
// at every change (a file of the project's directory, atomically), so
// that `ps` reads it without asking, and a supervisor that starts after
// another one died goes on from it.
type State struct {
	Containers map[string]ContainerState `json:"containers"`
}

// ContainerState is one container's part of State.
type ContainerState struct {
	Health *HealthState `json:"health,omitempty"`
	// RestartCount is how many times the restart policy started it.
	RestartCount int `json:"restartCount,omitempty"`
	// RestartDelay is the last back-off delay (Docker's doubling).
	RestartDelay time.Duration `json:"restartDelay,omitempty"`
	// Restarting is set while it waits for the restart policy to start
	// it again.
	Restarting bool `json:"restarting,omitempty"`
	// Stopped is set when the user stopped or killed it: always and
	// unless-stopped do not restart it until it is started again.
	Stopped bool `json:"stopped,omitempty"`
}

// HealthState is a container's health as its probes found it.
type HealthState struct {
	Status        string        `json:"status"`
	FailingStreak int           `json:"failingStreak"`
	Log           []ProbeResult `json:"log,omitempty"`
}

// ReadState reads the state a supervisor wrote at path; no file is an
// empty state.
func ReadState(path string) (State, error) {
	s := State{Containers: map[string]ContainerState{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reading the supervisor's state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		// Written atomically, so only another program could have broken
		// it: what it held (health, restart counts) is rebuilt as the
		// containers run.
		return State{Containers: map[string]ContainerState{}}, nil
	}
	if s.Containers == nil {
		s.Containers = map[string]ContainerState{}
	}
	return s, nil
}
