package project

import (
	"strings"
	"testing"
)

func hashes(t *testing.T, yaml string) map[string]string {
	t.Helper()
	p, err := load(t, yaml, func(o *Options) { o.Profiles = []string{"a"} })
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, s := range p.Services {
		h, err := ServiceHash(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			t.Fatalf("hash %q is not a hex sha256", h)
		}
		out[name] = h
	}
	return out
}

// TestServiceHash changes one thing at a time from a base service. Like docker
// compose's, the hash changes when a deploy section appears or goes, even one
// holding only replicas: the base has one, and only the count changes below.
func TestServiceHash(t *testing.T) {
	const db = "\n  db: {image: busybox}\n"
	web := func(extra string) string {
		return "services:\n  web: {image: busybox, command: [sleep, '1'], deploy: {replicas: 2}" + extra + "}" + db
	}
	base := hashes(t, web(""))["web"]
	for _, tc := range []struct {
		name string
		yaml string
		same bool
	}{
		{"same input", web(""), true},
		{"scale", "services:\n  web: {image: busybox, command: [sleep, '1'], deploy: {replicas: 2}, scale: 2}" + db, true},
		{"deploy.replicas", "services:\n  web: {image: busybox, command: [sleep, '1'], deploy: {replicas: 5}}" + db, true},
		{"depends_on", web(", depends_on: [db]"), true},
		{"pull_policy", web(", pull_policy: always"), true},
		{"profiles", web(", profiles: [a]"), true},
		{"command", "services:\n  web: {image: busybox, command: [sleep, '2'], deploy: {replicas: 2}}" + db, false},
		{"image", "services:\n  web: {image: 'busybox:1', command: [sleep, '1'], deploy: {replicas: 2}}" + db, false},
		{"environment", web(", environment: {A: b}"), false},
		{"deploy.resources", "services:\n  web: {image: busybox, command: [sleep, '1'], deploy: {replicas: 2, resources: {limits: {memory: 64m}}}}" + db, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hashes(t, tc.yaml)["web"]
			if (got == base) != tc.same {
				t.Errorf("hash %s, base %s: same=%v, want same=%v", got, base, got == base, tc.same)
			}
		})
	}
}
