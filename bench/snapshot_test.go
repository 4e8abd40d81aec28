package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSnapshot: `berth snapshot save` and `berth snapshot restore` of
// the volume of a running Postgres holding 1 GiB and 10 GiB of table data
// (BERTH_BENCH_SNAPSHOT_GIB, default "1,10"), against what users script
// today with Docker, measured in the same run on the same data:
//
//   - copy-save: `berth stop db`, `cp -a --reflink=never` of the volume's
//     directory beside it, `berth start db`;
//   - copy-restore: `berth stop db`, `rm -rf` of the volume's data, `cp -a
//     --reflink=never` of the saved copy back, `berth start db`.
//
// (--reflink=never: on btrfs, cp would otherwise share the blocks, which
// is the snapshot's trick, not what a copy of a Docker volume on ext4
// costs.) Each operation is one whole command as a user runs it. save is
// followed, untimed, by `snapshot rm`; each restore is preceded, untimed,
// by a change to the database (a row inserted) and followed, untimed, by
// waiting for Postgres to answer again, whose time after the restore began
// is reported as ready-ms (crash recovery of the saved state included).
// Sub-benchmarks: save, restore, copy-save, copy-restore; ratios are
// computed from one run's figures. first-ms is the first iteration's time
// alone: the first restore after the data was written pays most (the
// old data's pages), and a user's test suite restores once per test.
func BenchmarkSnapshot(b *testing.B) {
	sizes := os.Getenv("BERTH_BENCH_SNAPSHOT_GIB")
	if sizes == "" {
		sizes = "1,10"
	}
	for _, s := range strings.Split(sizes, ",") {
		gib, err := strconv.Atoi(s)
		if err != nil || gib < 1 {
			b.Fatalf("BERTH_BENCH_SNAPSHOT_GIB: %q", sizes)
		}
		b.Run(fmt.Sprintf("%dGiB", gib), func(b *testing.B) {
			p := newSnapshotProject(b, gib)
			b.Run("save", func(b *testing.B) {
				var first time.Duration
				for i := range b.N {
					name := fmt.Sprintf("s%d", i)
					start := time.Now()
					p.must("snapshot", "save", name)
					if i == 0 {
						first = time.Since(start)
					}
					b.StopTimer()
					p.must("snapshot", "rm", name)
					b.StartTimer()
				}
				b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
			})
			p.must("snapshot", "save", "base")
			b.Run("restore", func(b *testing.B) {
				p.benchRestore(b, func() { p.must("snapshot", "restore", "base") })
			})
			if out := p.psql("select count(*) from marker"); out != "0" {
				b.Fatalf("after restore, marker rows: %q", out)
			}
			data := filepath.Join(p.root, "volumes", "benchsnap_pgdata", "_data")
			copyDir := filepath.Join(p.root, "volumes", "benchsnap_pgdata", "copy")
			b.Cleanup(func() { os.RemoveAll(copyDir) })
			b.Run("copy-save", func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					os.RemoveAll(copyDir)
					b.StartTimer()
					p.must("stop", "db")
					p.shell("cp", "-a", "--reflink=never", data, copyDir)
					p.must("start", "db")
					b.StopTimer()
					p.waitReady()
					b.StartTimer()
				}
			})
			b.Run("copy-restore", func(b *testing.B) {
				p.benchRestore(b, func() {
					p.must("stop", "db")
					p.shell("sh", "-c", `rm -rf "$1"/* && cp -a --reflink=never "$2"/. "$1"/`, "sh", data, copyDir)
					p.must("start", "db")
				})
			})
			if out := p.psql("select count(*) from marker"); out != "0" {
				b.Fatalf("after the copy's restore, marker rows: %q", out)
			}
		})
	}
}

// snapshotProject is a running Postgres with gib GiB of table data.
type snapshotProject struct{ *upProject }

func newSnapshotProject(b *testing.B, gib int) *snapshotProject {
	b.Helper()
	p := &snapshotProject{newBerthProject(b, "benchsnap", `name: benchsnap
services:
  db:
    image: postgres:15
    environment:
      POSTGRES_PASSWORD: bench
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U postgres"]
      interval: 100ms
      retries: 600
volumes:
  pgdata:
`, "postgres")}
	b.Cleanup(func() {
		p.berth("snapshot", "rm", "base")
		if out, err := p.berth("down", "-v", "-t", "1"); err != nil {
			b.Errorf("cleaning up: %v: %s", err, out)
		}
		p.waitSupervisorGone(3 * time.Second)
	})
	p.must("up", "-d", "--wait")
	// About 1 KiB a row, a million rows a GiB, a million at a time.
	p.psql("create table fill (id bigint, v text); create table marker (x int)")
	for i := range gib {
		p.psql(fmt.Sprintf("insert into fill select i, repeat(md5(i::text), 30) from generate_series(%d, %d) i", i*1000000+1, (i+1)*1000000))
	}
	p.psql("checkpoint")
	// The fill's pages reach the disk before anything is timed: the
	// first save would otherwise pay their writeback (btrfs flushes a
	// subvolume's dirty data when it snapshots it), which no later save,
	// nor a user's database that has been running for a while, pays.
	p.shell("sync")
	size, _ := strconv.ParseInt(p.psql("select pg_database_size('postgres')"), 10, 64)
	b.Logf("database: %.2f GiB", float64(size)/(1<<30))
	b.ResetTimer()
	return p
}

func (p *snapshotProject) must(args ...string) string {
	p.b.Helper()
	out, err := p.berth(args...)
	if err != nil {
		p.b.Fatalf("%v: %s", err, out)
	}
	return out
}

func (p *snapshotProject) psql(sql string) string {
	p.b.Helper()
	return strings.TrimSpace(p.must("exec", "-T", "db", "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", sql))
}

func (p *snapshotProject) shell(name string, args ...string) {
	p.b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		p.b.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// benchRestore times restore, each time after a change to the database
// (untimed), and reports how long Postgres took to answer again after it
// began (ready-ms).
func (p *snapshotProject) benchRestore(b *testing.B, restore func()) {
	var ready, first time.Duration
	for i := range b.N {
		b.StopTimer()
		p.psql("insert into marker values (1)")
		b.StartTimer()
		start := time.Now()
		restore()
		if i == 0 {
			first = time.Since(start)
		}
		b.StopTimer()
		p.waitReady()
		ready += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ready-ms")
	b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
}

// waitReady waits until Postgres accepts connections.
func (p *snapshotProject) waitReady() {
	p.b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := p.berth("exec", "-T", "db", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-q"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.b.Fatal("postgres did not come back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
