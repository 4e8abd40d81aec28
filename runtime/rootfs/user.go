package rootfs

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// maxUserFile is the most berth reads of an image's /etc/passwd or
// /etc/group: real ones are a few KiB, and the image must not make berth
// allocate without bound.
const maxUserFile = 10 << 20

// maxID is the largest uid or gid berth accepts, as runc and Docker do: the
// kernel takes up to 2^32-2, but 32-bit tools and the OCI runtimes stop at
// 2^31-1.
const maxID = math.MaxInt32

// User is the identity a container's process runs with.
type User struct {
	UID, GID uint32
	// AdditionalGIDs are the supplementary groups: the primary group
	// first, then the groups /etc/group lists the user in, then group_add,
	// each once.
	AdditionalGIDs []uint32
	// Home is the user's home directory from /etc/passwd, "/" when the
	// user has no entry: the HOME of the process when the image and the
	// service set none.
	Home string
}

// ResolveUserFrom resolves a user specification the way Docker does, from
// the content of an image's /etc/passwd and /etc/group (nil when the image
// has no such file). It is ResolveUser without the file system.
//
// spec is "", "uid", "uid:gid", "name", "name:group", "uid:group" or
// "name:gid"; "" is root. groupAdd are group names or numbers (group_add).
// Numeric ids need no entry in the files; names must have one. A file
// larger than 10 MiB is an error.
func ResolveUserFrom(spec string, groupAdd []string, passwd, group io.Reader) (User, error) {
	return resolveUser(spec, groupAdd, readerSource(passwd), readerSource(group))
}

// userFile gives the content of /etc/passwd or /etc/group, nil when the
// image has none. It is only called when the file is needed, so that a
// hostile file an all-numeric user never needs cannot fail it.
type userFile func() ([]byte, error)

func readerSource(r io.Reader) userFile {
	return func() ([]byte, error) {
		if r == nil {
			return nil, nil
		}
		return readLimited(r)
	}
}

// readLimited reads r to its end, refusing more than maxUserFile bytes.
func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxUserFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxUserFile {
		return nil, fmt.Errorf("%w: larger than %d MiB", errdefs.ErrInvalidArgument, maxUserFile>>20)
	}
	return b, nil
}

func resolveUser(spec string, groupAdd []string, passwdFile, groupFile userFile) (User, error) {
	userPart, groupPart, _ := strings.Cut(spec, ":")
	uid, userNumeric, err := parseID(userPart)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", spec, err)
	}
	gid, groupNumeric, err := parseID(groupPart)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", spec, err)
	}

	u := User{Home: "/"}
	var matched string // the passwd entry's name, for its supplementary groups
	passwd, err := passwdFile()
	if err != nil {
		return User{}, fmt.Errorf("reading the image's /etc/passwd: %w", err)
	}
	var entry *passwdEntry
	for _, e := range parsePasswd(passwd) {
		// The first matching entry wins, as in every libc. No user
		// means root: its entry still gives the home and groups.
		if (userPart == "" && e.uid == 0) || (userNumeric && e.uid == uid) || (userPart != "" && !userNumeric && e.name == userPart) {
			entry = &e
			break
		}
	}
	switch {
	case entry != nil:
		u.UID, u.GID, matched = entry.uid, entry.gid, entry.name
		if entry.home != "" {
			u.Home = entry.home
		}
	case userNumeric:
		u.UID = uid
	case userPart != "":
		return User{}, fmt.Errorf("%w: user %q is not in the image's /etc/passwd%s: use a numeric uid, or a user the image defines",
			errdefs.ErrNotFound, userPart, noPasswd(passwd))
	}

	var groups *[]groupEntry // read on first use
	groupMissing := false
	loadGroups := func() ([]groupEntry, error) {
		if groups == nil {
			b, err := groupFile()
			if err != nil {
				return nil, fmt.Errorf("reading the image's /etc/group: %w", err)
			}
			gs := parseGroup(b)
			groups, groupMissing = &gs, b == nil
		}
		return *groups, nil
	}
	// lookup finds a group by name or number; a number needs no entry.
	lookup := func(what, name string) (uint32, error) {
		id, numeric, err := parseID(name)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", what, name, err)
		}
		if numeric {
			return id, nil
		}
		gs, err := loadGroups()
		if err != nil {
			return 0, err
		}
		for _, g := range gs {
			if g.name == name {
				return g.gid, nil
			}
		}
		hint := ""
		if groupMissing {
			hint = " (the image has no /etc/group)"
		}
		return 0, fmt.Errorf("%w: %s %q is not in the image's /etc/group%s: use a numeric gid, or a group the image defines",
			errdefs.ErrNotFound, what, name, hint)
	}

	var supplementary []uint32
	switch {
	case groupPart != "" && groupNumeric:
		u.GID = gid
	case groupPart != "":
		if u.GID, err = lookup("group", groupPart); err != nil {
			return User{}, err
		}
	case matched != "":
		// Supplementary groups come from /etc/group only when the
		// group is implicit, as in Docker (moby/sys/user GetExecUser).
		gs, err := loadGroups()
		if err != nil {
			return User{}, err
		}
		for _, g := range gs {
			if slices.Contains(g.members, matched) {
				supplementary = append(supplementary, g.gid)
			}
		}
	}

	u.AdditionalGIDs = []uint32{u.GID}
	add := func(id uint32) {
		if !slices.Contains(u.AdditionalGIDs, id) {
			u.AdditionalGIDs = append(u.AdditionalGIDs, id)
		}
	}
	for _, id := range supplementary {
		add(id)
	}
	for _, g := range groupAdd {
		if g == "" {
			return User{}, fmt.Errorf("%w: group_add: empty group", errdefs.ErrInvalidArgument)
		}
		id, err := lookup("group_add: group", g)
		if err != nil {
			return User{}, err
		}
		add(id)
	}
	return u, nil
}

func noPasswd(file []byte) string {
	if file == nil {
		return " (the image has no /etc/passwd)"
	}
	return ""
}

// parseID reads a uid or gid: all digits, at most maxID. Anything else is a
// name (numeric false); "" is neither.
func parseID(s string) (id uint32, numeric bool, err error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxID {
		return 0, true, fmt.Errorf("%w: id %s is out of range (0 to %d)", errdefs.ErrInvalidArgument, s, maxID)
	}
	return uint32(n), true, nil
}

// passwdEntry is a line of passwd(5): name:password:uid:gid:gecos:home:shell.
type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

// groupEntry is a line of group(5): name:password:gid:member,member.
type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// lines yields the entries of a passwd or group file: blank lines and
// comments skipped, fields split on ':'. Lines that are not entries (too few
// fields, ids that are not numbers) are skipped, as glibc's files backend
// does; such a line never counts as a match, so a garbled uid cannot
// become root.
func lines(b []byte, yield func(fields []string)) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' || bytes.IndexByte(line, 0) >= 0 {
			continue
		}
		yield(strings.Split(string(line), ":"))
	}
}

func parsePasswd(b []byte) []passwdEntry {
	var out []passwdEntry
	lines(b, func(f []string) {
		if len(f) < 4 || f[0] == "" {
			return
		}
		uid, ok1, err1 := parseID(f[2])
		gid, ok2, err2 := parseID(f[3])
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 && validHome(f[5]) {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out
}

// validHome keeps a home directory usable as HOME: an absolute path without
// control characters.
func validHome(h string) bool {
	if !strings.HasPrefix(h, "/") {
		return false
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x20 || h[i] == 0x7f {
			return false
		}
	}
	return true
}

func parseGroup(b []byte) []groupEntry {
	var out []groupEntry
	lines(b, func(f []string) {
		if len(f) < 3 || f[0] == "" {
			return
		}
		gid, ok, err := parseID(f[2])
		if !ok || err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 {
			for m := range strings.SplitSeq(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	return out
}
