package entry

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProjectName(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    string
		wantErr string
	}{
		{[]string{"--project-name", "web"}, "web", ""},
		{[]string{"--project-name=web"}, "web", ""},
		{[]string{"-p", "web"}, "web", ""},
		{nil, "", "supervise needs --project-name"},
		{[]string{"--project-name"}, "", "--project-name needs a value"},
		{[]string{"--project-name", "web", "up"}, "", `unknown argument "up"`},
		{[]string{"--project-name="}, "", "supervise needs --project-name"},
	} {
		got, err := projectName(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("projectName(%q) = %q, %v; want an error with %q", tc.args, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("projectName(%q) = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
}

// A command line the CLI never writes is refused with a usage error, before
// anything is opened.
func TestMainUsage(t *testing.T) {
	var stderr bytes.Buffer
	if code := Main([]string{"--bogus"}, nil, &stderr); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "usage is supervise --project-name NAME") {
		t.Errorf("stderr %q does not give the usage", stderr.String())
	}
}

// TestInheritNone: a file the supervisor inherited (the lock on its copy
// of the binary) is not passed on to the processes it starts.
func TestInheritNone(t *testing.T) {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0) // no O_CLOEXEC, as inherited
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	inheritNone()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d is not close-on-exec after inheritNone", fd)
	}
}
