package compose

import (
	"slices"
	"testing"
)

// TestExecEnv: exec -e KEY=VALUE as given; a bare KEY takes the value of
// berth's environment (an empty one too), and is left out when unset.
func TestExecEnv(t *testing.T) {
	environ := map[string]string{"FROM_SHELL": "yes", "EMPTY": ""}
	got := ExecEnv([]string{"A=1", "FROM_SHELL", "UNSET", "EMPTY", "B=x=y"}, environ)
	if want := []string{"A=1", "FROM_SHELL=yes", "EMPTY=", "B=x=y"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
