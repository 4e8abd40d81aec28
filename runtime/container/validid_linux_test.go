package container

import (
	"regexp"
	"strings"
	"testing"
)

// validID accepts exactly what Docker's pattern does.
func TestValidID(t *testing.T) {
	docker := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	for _, id := range []string{
		"", "a", "A", "0", "_a", ".a", "-a", "a_b.c-d", "p-web-1", "a b", "a/b", "a:b", "é",
		strings.Repeat("f", 64), strings.Repeat("a", 128), strings.Repeat("a", 129), "a\n", "\x00",
	} {
		if got, want := validID(id), docker.MatchString(id); got != want {
			t.Errorf("validID(%q) = %v, want %v", id, got, want)
		}
	}
}
