package supervisor

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestReadMessage(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"request", `{"op":"stop","id":"abc","timeout":1000000000}` + "\n", true},
		{"unknown field", `{"op":"stop","rm":"-rf"}` + "\n", false},
		{"two objects", `{"op":"ping"} {"op":"ping"}` + "\n", false},
		{"not json", "stop abc\n", false},
		{"no newline", `{"op":"ping"}`, false},
		{"empty", "", false},
		{"too long", `{"op":"` + strings.Repeat("a", maxMessage) + `"}` + "\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			err := readMessage(bufio.NewReader(strings.NewReader(tc.in)), &r)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	var r Request
	if err := readMessage(bufio.NewReader(strings.NewReader(`{"op":"stop","id":"abc","timeout":1000000000}`+"\n")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Op != OpStop || r.ID != "abc" || r.Timeout.Std().Seconds() != 1 {
		t.Errorf("decoded %+v", r)
	}
}

// FuzzDecode: whatever a peer sends, the decoder returns (no panic, no
// unbounded read), and what it accepts encodes back to what decodes the
// same.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"op":"start","id":"x"}` + "\n"))
	f.Add([]byte(`{"op":"kill","id":"x","signal":"SIGKILL"}` + "\n"))
	f.Add([]byte(`{"op":"stop","timeout":-1}` + "\n" + `{"op":"ping"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 16)
		for {
			var req Request
			if err := readMessage(r, &req); err != nil {
				return
			}
			var buf bytes.Buffer
			if err := writeMessage(&buf, req); err != nil {
				t.Fatal(err)
			}
			var again Request
			if err := readMessage(bufio.NewReader(&buf), &again); err != nil {
				t.Fatalf("re-decoding %q: %v", buf.String(), err)
			}
			if again.Op != req.Op || again.ID != req.ID || again.Signal != req.Signal {
				t.Fatalf("round trip %+v -> %+v", req, again)
			}
		}
	})
}
