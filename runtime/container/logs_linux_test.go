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

// TestStarterGoesAway: the process that started a container exits while
// the container writes as fast as it can; the container neither dies nor
// gets SIGPIPE, keeps writing into its FIFOs, and the next process that
// reattaches gets every line, none lost in the handover.
func TestStarterGoesAway(t *testing.T) {
	rt := newRuntime(t)
	const lines = 60000
	c := busyboxSpec(t, "sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo line $i; i=$((i+1)); done; exec sleep 1000", lines))
	ct := create(t, rt, c)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), startChildEnv+"="+rt.root+"\n"+rt.run+"\n"+ct.ID)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("starting process: %v: %s", err, out)
	}
	// Nobody reads the output now.
	time.Sleep(200 * time.Millisecond)
	if s, err := ct.State(t.Context()); err != nil || s.Status != "running" {
		t.Fatalf("state %+v, %v: the container did not survive its starter", s, err)
	}
	if err := ct.Reattach(t.Context()); err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("line %d\n", lines-1)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if recs := records(t, ct); len(recs) > 0 && string(recs[len(recs)-1].Line) == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log does not end in %q after 30 s", last)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	zero := time.Duration(0)
	e, err := ct.Stop(ctx, &zero)
	if err != nil {
		t.Fatal(err)
	}
	// Another process was its parent, so the kernel tells this one
	// nothing of its exit; but the stop killed it, and nothing outlives
	// SIGKILL.
	if e.Missed || e.Code != 137 || e.Signal != "SIGKILL" {
		t.Errorf("exit %+v: killed by the stop, want 137", e)
	}
	// The starting process detached before it exited: what it read is in
	// the log, what it did not the reattaching process read.
	recs := records(t, ct)
	for i, r := range recs {
		if want := fmt.Sprintf("line %d\n", i); string(r.Line) != want {
			t.Fatalf("record %d is %q, want %q: output lost in the handover", i, r.Line, want)
		}
	}
	if len(recs) != lines {
		t.Errorf("%d records, want %d", len(recs), lines)
	}
}
