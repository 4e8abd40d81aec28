package logs

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      map[string]string
		want    Options
		wantErr string // a part of the error; "" for none
	}{
		{name: "none", in: nil, want: Options{}},
		{name: "docker sizes are decimal", in: map[string]string{"max-size": "10m", "max-file": "3"}, want: Options{MaxSize: 10_000_000, MaxFiles: 3}},
		{name: "kilobytes", in: map[string]string{"max-size": "1k"}, want: Options{MaxSize: 1000}},
		{name: "suffix with b", in: map[string]string{"max-size": "2MB"}, want: Options{MaxSize: 2_000_000}},
		{name: "fraction", in: map[string]string{"max-size": "1.5k"}, want: Options{MaxSize: 1500}},
		{name: "bytes", in: map[string]string{"max-size": "4096"}, want: Options{MaxSize: 4096}},
		{name: "one file", in: map[string]string{"max-file": "1"}, want: Options{MaxFiles: 1}},
		{name: "docker options berth ignores", in: map[string]string{"compress": "true", "tag": "{{.Name}}", "labels": "a"}, want: Options{}},
		{name: "bad size", in: map[string]string{"max-size": "ten megs"}, wantErr: `max-size "ten megs"`},
		{name: "bad suffix", in: map[string]string{"max-size": "10x"}, wantErr: `max-size "10x"`},
		{name: "zero size", in: map[string]string{"max-size": "0"}, wantErr: `max-size "0": invalid argument: must be a positive size`},
		{name: "negative size", in: map[string]string{"max-size": "-1m"}, wantErr: `max-size "-1m"`},
		{name: "zero files", in: map[string]string{"max-file": "0"}, wantErr: `max-file "0"`},
		{name: "files not a number", in: map[string]string{"max-file": "five"}, wantErr: `max-file "five"`},
		{name: "unknown key", in: map[string]string{"max-files": "5"}, wantErr: `logging option "max-files": invalid argument: only max-size and max-file are supported`},
		{name: "first bad key in order", in: map[string]string{"zz": "1", "aa": "1"}, wantErr: `"aa"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOptions(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("got %v, %v; want an invalid-argument error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNewWriterRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"../escape", Options{}},
		{"a/b", Options{}},
		{"", Options{}},
		{"..", Options{}},
		{"ok", Options{MaxSize: -1}},
		{"ok", Options{MaxFiles: -1}},
	} {
		if _, err := NewWriter(t.TempDir(), tc.name, tc.opts); !errdefs.IsInvalidArgument(err) {
			t.Errorf("NewWriter(%q, %+v) = %v, want an invalid-argument error", tc.name, tc.opts, err)
		}
	}
}
