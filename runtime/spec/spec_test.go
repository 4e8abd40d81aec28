package spec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A spec printed (in an error, a log line) or saved shows no secret.
func TestContentHidden(t *testing.T) {
	c := Container{Files: []File{{Target: "/run/secrets/x", Content: Content("s3cr3t")}}}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		s := fmt.Sprintf(format, c)
		if strings.Contains(s, "s3cr3t") || strings.Contains(strings.ToLower(s), "733363723374") {
			t.Errorf("%s shows the secret: %s", format, s)
		}
		if !strings.Contains(s, "<6 bytes>") {
			t.Errorf("%s: %s, want the size", format, s)
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cr3t") || strings.Contains(string(b), "czNjcjN0") {
		t.Errorf("JSON shows the secret: %s", b)
	}
}
