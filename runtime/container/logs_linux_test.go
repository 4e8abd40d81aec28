package container

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/logs"
)

func records(t *testing.T, ct *Container) []logs.Record {
	t.Helper()
	var recs []logs.Record
	err := ct.Logs(t.Context(), LogOptions{Tail: -1}, func(r logs.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestLogs: stdout and stderr land in the log, one JSON object per line as
// Docker's json-file driver writes them; a line over 16 KiB comes back
// whole.
func TestLogs(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sh", "-c", "echo out1; echo err1 >&2; head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline'")
	ct := create(t, rt, c)
	if err := ct.Start(t.Context(), StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range records(t, ct) {
		got[r.Stream] = append(got[r.Stream], string(r.Line))
	}
	want := map[string][]string{
		"stdout": {"out1\n", strings.Repeat("x", 40000) + "\n", "no newline"},
		"stderr": {"err1\n"},
	}
	for stream, lines := range want {
		if fmt.Sprint(got[stream]) != fmt.Sprint(lines) {
			t.Errorf("%s: got %d lines %.80q, want %.80q", stream, len(got[stream]), got[stream], lines)
		}
	}
	// The file itself, as a user of Docker's logs would parse it.
	f, err := os.Open(filepath.Join(rt.dir(ct.ID), "container.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ Log, Stream, Time string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Stream == "" || rec.Time == "" {
			t.Fatalf("log line %.100q: %v", sc.Text(), err)
		}
		if len(rec.Log) > 16<<10 {
			t.Errorf("a record of %d bytes: Docker splits lines at 16 KiB", len(rec.Log))
		}
	}
}

// TestLogRotation: logging.options max-size and max-file bound the files.
func TestLogRotation(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done")
	c.Log.MaxSize, c.Log.MaxFiles = 8<<10, 3
	ct := create(t, rt, c)
	if err := ct.Start(t.Context(), StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(rt.dir(ct.ID), "container.log*"))
	if len(files) != 3 {
		t.Errorf("log files %v, want 3", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 8<<10 {
			t.Errorf("%s: %v, size over max-size", f, err)
		}
	}
	recs := records(t, ct)
	if last := string(recs[len(recs)-1].Line); last != "line 1999\n" {
		t.Errorf("last line %q", last)
	}
}

// TestStarterGoesAway: the process that started a container exits; the
// container neither dies nor gets SIGPIPE, keeps writing into its FIFOs,
// and the next process that reattaches gets every line, none lost.
func TestStarterGoesAway(t *testing.T) {
	rt := newRuntime(t)
	c := busyboxSpec(t, "sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.01; done")
	ct := create(t, rt, c)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), startChildEnv+"="+rt.root+"\n"+rt.run+"\n"+ct.ID)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("starting process: %v: %s", err, out)
	}
	// Nobody reads the output now.
	time.Sleep(500 * time.Millisecond)
	if s, err := ct.State(t.Context()); err != nil || s.Status != "running" {
		t.Fatalf("state %+v, %v: the container did not survive its starter", s, err)
	}
	if err := ct.Reattach(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	zero := time.Duration(0)
	e, err := ct.Stop(ctx, &zero)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Missed || e.Code != 255 {
		t.Errorf("exit %+v: another process was its parent, the code is not known", e)
	}
	recs := records(t, ct)
	if len(recs) < 30 {
		t.Fatalf("only %d lines", len(recs))
	}
	// The starting process may have read the first lines and died before
	// it logged them (a kill -9 loses what a process holds); after that,
	// nothing may be missing.
	var first int
	if _, err := fmt.Sscanf(string(recs[0].Line), "line %d", &first); err != nil || first > 5 {
		t.Fatalf("first record %q", recs[0].Line)
	}
	for i, r := range recs {
		if want := fmt.Sprintf("line %d\n", first+i); string(r.Line) != want {
			t.Fatalf("record %d is %q, want %q: output lost while nobody read", i, r.Line, want)
		}
	}
}
