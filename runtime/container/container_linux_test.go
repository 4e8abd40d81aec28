package container

import (
	"strings"
	"testing"
)

func TestRunEcho(t *testing.T) {
	rt := newRuntime(t)
	out, e := run(t, rt, busyboxSpec(t, "sh", "-c", "echo hello; echo oops >&2; exit 3"))
	if e.Code != 3 {
		t.Errorf("exit code %d, want 3", e.Code)
	}
	if !strings.Contains(out, "hello") || !strings.Contains(out, "oops") {
		t.Errorf("output %q", out)
	}
}
