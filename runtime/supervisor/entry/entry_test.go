package entry

import (
	"bytes"
	"strings"
	"testing"
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
