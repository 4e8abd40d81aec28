package logs

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// maxChunk is the most text one record holds, not counting the "\n"
	// that ends a line: Docker's copier cuts lines at 16 KiB too.
	maxChunk = 16 << 10
	// maxRecord bounds a line of a log file the reader accepts. A record
	// written here is at most about 6*maxChunk (every byte escaped as
	// \u00XX); anything longer is corrupt and skipped.
	maxRecord = 1 << 20
	// maxLine bounds a line the reader joins from chunks: the container
	// chooses how long its lines are, and `berth logs` must not run out of
	// memory because of it. Longer lines are returned in pieces.
	maxLine = 1 << 20
)

// appendRecord appends a record holding text, followed by "\n" in the JSON
// string if newline is set, and the "\n" that ends the record in the file.
// Field order and escaping are those of Docker's jsonlog.JSONLogs.
func appendRecord(dst, text []byte, newline bool, stream string, t time.Time) []byte {
	dst = append(dst, `{"log":"`...)
	dst = appendEscaped(dst, text)
	if newline {
		dst = append(dst, `\n`...)
	}
	dst = append(dst, '"')
	if stream != "" {
		dst = append(dst, `,"stream":"`...)
		dst = appendEscaped(dst, []byte(stream))
		dst = append(dst, '"')
	}
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n"...)
}

// appendEscaped appends s as the inside of a JSON string, the way Docker's
// ffjsonWriteJSONBytesAsString does (and encoding/json, which decodes it).
func appendEscaped(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// cutChunk returns where to end the first record of a line b longer than
// maxChunk: at maxChunk, or up to three bytes earlier so that a multi-byte
// character is not cut in two (each half would be stored as U+FFFD). Docker
// cuts at 16 KiB regardless; both read back the same way.
func cutChunk(b []byte) int {
	n := maxChunk
	if len(b) <= n {
		return len(b)
	}
	for i := n - 1; i > n-utf8.UTFMax; i-- {
		if !utf8.RuneStart(b[i]) {
			continue
		}
		if !utf8.FullRune(b[i:]) {
			return i // the rest of the character has not arrived yet
		}
		if _, size := utf8.DecodeRune(b[i:]); size > 1 && i+size > n {
			return i
		}
		return n
	}
	return n
}

// jsonRecord is a record as decoded. Docker's records may also carry
// "attrs" (labels, env, tag), which berth ignores.
type jsonRecord struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// decodeRecord decodes one line of a log file. It reports false for a line
// that is not a record: torn by a crash or a full disk, or not JSON at all.
func decodeRecord(line []byte, r *jsonRecord) bool {
	*r = jsonRecord{}
	if len(line) == 0 || line[0] != '{' {
		return false
	}
	if err := json.Unmarshal(line, r); err != nil {
		return false
	}
	// Every record has a time; a zero one means the key was missing. Docker
	// leaves out an empty "log", and such a record would add nothing.
	return !r.Time.IsZero() && r.Log != ""
}

// ends reports whether a record's text ends its line.
func (r *jsonRecord) ends() bool { return strings.HasSuffix(r.Log, "\n") }
