package rootfs

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

const testPasswd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment, then a blank line

  app:x:1000:1000:App,,,:/home/app:/bin/sh
broken:x:notanumber:0::/:/bin/sh
toobig:x:4294967296:0::/:/bin/sh
dup:x:1001:1001::/first:/bin/sh
dup:x:1002:1002::/second:/bin/sh
nohome:x:1003:1003
relhome:x:1004:1004::home/rel:/bin/sh
crlf:x:1005:1005::/home/crlf:/bin/sh` + "\r\n"

const testGroup = `root:x:0:
daemon:x:1:
wheel:x:10:root,app
app:x:1000:
docker:x:999:app, crlf
staff:x:50:
broken:x:x:app
`

func TestResolveUserFrom(t *testing.T) {
	type want struct {
		uid, gid uint32
		gids     []uint32
		home     string
	}
	tests := []struct {
		name     string
		spec     string
		groupAdd []string
		custom   bool    // passwd and group below, not the test files
		passwd   *string // nil: the image has no /etc/passwd
		group    *string
		want     want
		err      string // part of the error, empty when none
		kind     func(error) bool
	}{
		{name: "empty is root", spec: "", want: want{0, 0, []uint32{0, 10}, "/root"}},
		{name: "root by name", spec: "root", want: want{0, 0, []uint32{0, 10}, "/root"}},
		{name: "root by uid", spec: "0", want: want{0, 0, []uint32{0, 10}, "/root"}},
		{name: "name", spec: "app", want: want{1000, 1000, []uint32{1000, 10, 999}, "/home/app"}},
		{name: "uid in passwd", spec: "1000", want: want{1000, 1000, []uint32{1000, 10, 999}, "/home/app"}},
		{name: "name:group gives no supplementary groups", spec: "app:staff", want: want{1000, 50, []uint32{50}, "/home/app"}},
		{name: "name:gid", spec: "app:50", want: want{1000, 50, []uint32{50}, "/home/app"}},
		{name: "uid:group", spec: "1000:docker", want: want{1000, 999, []uint32{999}, "/home/app"}},
		{name: "uid:gid", spec: "1000:1000", want: want{1000, 1000, []uint32{1000}, "/home/app"}},
		{name: "uid not in passwd", spec: "4242", want: want{4242, 0, []uint32{0}, "/"}},
		{name: "uid:gid not in files", spec: "4242:4343", want: want{4242, 4343, []uint32{4343}, "/"}},
		{name: "empty group part", spec: "app:", want: want{1000, 1000, []uint32{1000, 10, 999}, "/home/app"}},
		{name: "first entry wins", spec: "dup", want: want{1001, 1001, []uint32{1001}, "/first"}},
		{name: "entry without home", spec: "nohome", want: want{1003, 1003, []uint32{1003}, "/"}},
		{name: "relative home", spec: "relhome", want: want{1004, 1004, []uint32{1004}, "/"}},
		{name: "CRLF line and spaced member", spec: "crlf", want: want{1005, 1005, []uint32{1005, 999}, "/home/crlf"}},
		{name: "largest id", spec: "2147483647:2147483647", want: want{2147483647, 2147483647, []uint32{2147483647}, "/"}},
		{name: "group_add by name and number, once each", spec: "app", groupAdd: []string{"docker", "5000", "wheel", "staff", "5000"},
			want: want{1000, 1000, []uint32{1000, 10, 999, 5000, 50}, "/home/app"}},
		{name: "group_add with a numeric user", spec: "4242:4242", groupAdd: []string{"staff"}, want: want{4242, 4242, []uint32{4242, 50}, "/"}},

		{name: "unknown user", spec: "nobody", err: `user "nobody" is not in the image's /etc/passwd`, kind: errdefs.IsNotFound},
		{name: "unparsable entry never matches", spec: "broken", err: `user "broken" is not in the image's /etc/passwd`, kind: errdefs.IsNotFound},
		{name: "out-of-range entry never matches", spec: "toobig", err: `user "toobig" is not in`, kind: errdefs.IsNotFound},
		{name: "unknown group", spec: "app:nogroup", err: `group "nogroup" is not in the image's /etc/group`, kind: errdefs.IsNotFound},
		{name: "unknown group_add", spec: "app", groupAdd: []string{"nogroup"}, err: `group_add: group "nogroup" is not in the image's /etc/group`, kind: errdefs.IsNotFound},
		{name: "empty group_add", spec: "app", groupAdd: []string{""}, err: "group_add: empty group", kind: errdefs.IsInvalidArgument},
		{name: "uid out of range", spec: "2147483648", err: "out of range", kind: errdefs.IsInvalidArgument},
		{name: "gid out of range", spec: "0:99999999999999999999", err: "out of range", kind: errdefs.IsInvalidArgument},
		{name: "group_add out of range", spec: "0", groupAdd: []string{"4294967296"}, err: "out of range", kind: errdefs.IsInvalidArgument},
		{name: "newline in name", spec: "app\nroot", err: `user "app\nroot" is not in`, kind: errdefs.IsNotFound},

		{name: "no passwd, numeric", custom: true, spec: "1000:1000", passwd: ptr(""), group: nil, want: want{1000, 1000, []uint32{1000}, "/"}},
		{name: "no passwd, root", custom: true, spec: "", passwd: nil, group: nil, want: want{0, 0, []uint32{0}, "/"}},
		{name: "no files, group_add number", custom: true, spec: "", groupAdd: []string{"7"}, passwd: nil, group: nil, want: want{0, 0, []uint32{0, 7}, "/"}},
		{name: "no passwd, name", custom: true, spec: "app", passwd: nil, err: "the image has no /etc/passwd", kind: errdefs.IsNotFound},
		{name: "no group, name", custom: true, spec: "1000:staff", passwd: ptr(testPasswd), group: nil, err: "the image has no /etc/group", kind: errdefs.IsNotFound},
		{name: "no group, user's groups", custom: true, spec: "app", passwd: ptr(testPasswd), group: nil, want: want{1000, 1000, []uint32{1000}, "/home/app"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			passwd, group := ptr(testPasswd), ptr(testGroup)
			if tc.custom {
				passwd, group = tc.passwd, tc.group
			}
			got, err := ResolveUserFrom(tc.spec, tc.groupAdd, reader(passwd), reader(group))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				if tc.kind != nil && !tc.kind(err) {
					t.Errorf("error %v is not of the expected kind", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := User{UID: tc.want.uid, GID: tc.want.gid, AdditionalGIDs: tc.want.gids, Home: tc.want.home}
			if got.UID != w.UID || got.GID != w.GID || got.Home != w.Home || !slices.Equal(got.AdditionalGIDs, w.AdditionalGIDs) {
				t.Errorf("got %+v, want %+v", got, w)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func reader(s *string) io.Reader {
	if s == nil {
		return nil
	}
	return strings.NewReader(*s)
}

func TestResolveUserFromLimits(t *testing.T) {
	big := strings.Repeat("x", maxUserFile-len("\napp:x:1:1::/:/bin/sh\n")) + "\napp:x:1:1::/:/bin/sh\n"
	if _, err := ResolveUserFrom("app", nil, strings.NewReader(big), nil); err != nil {
		t.Errorf("a file of exactly 10 MiB: %v", err)
	}
	_, err := ResolveUserFrom("app", nil, strings.NewReader(big+"x"), nil)
	if err == nil || !strings.Contains(err.Error(), "larger than 10 MiB") || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("a file over 10 MiB: %v", err)
	}
	// A numeric user reads passwd (for its home and groups), so an
	// oversized file fails it too, as in Docker.
	if _, err := ResolveUserFrom("1", nil, strings.NewReader(big+"x"), nil); err == nil {
		t.Error("an oversized passwd was accepted for a numeric user")
	}
}

func TestResolveUserFromReadsGroupOnlyWhenNeeded(t *testing.T) {
	failing := func() io.Reader { return io.MultiReader(strings.NewReader("root:x:0:\n"), errReader{}) }
	for _, spec := range []string{"4242", "4242:4242", "app:1000"} {
		if _, err := ResolveUserFrom(spec, []string{"12"}, strings.NewReader(testPasswd), failing()); spec != "app:1000" && err != nil {
			t.Errorf("%s: %v", spec, err)
		}
	}
	// app has an entry: its supplementary groups need /etc/group.
	_, err := ResolveUserFrom("app", nil, strings.NewReader(testPasswd), failing())
	if err == nil || !strings.Contains(err.Error(), "reading the image's /etc/group") {
		t.Errorf("got %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParsePasswdAndGroup(t *testing.T) {
	p := parsePasswd([]byte(testPasswd))
	var names []string
	for _, e := range p {
		names = append(names, e.name)
	}
	if want := []string{"root", "daemon", "app", "dup", "dup", "nohome", "relhome", "crlf"}; !slices.Equal(names, want) {
		t.Errorf("passwd entries %q, want %q", names, want)
	}
	g := parseGroup([]byte(testGroup))
	names = nil
	for _, e := range g {
		names = append(names, e.name)
	}
	if want := []string{"root", "daemon", "wheel", "app", "docker", "staff"}; !slices.Equal(names, want) {
		t.Errorf("group entries %q, want %q", names, want)
	}
	if !slices.Equal(g[4].members, []string{"app", "crlf"}) {
		t.Errorf("docker members %q", g[4].members)
	}
}
