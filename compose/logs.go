package compose

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/logs"
)

// LogsOptions are `logs`'s.
type LogsOptions struct {
	Services []string
	Follow   bool
	Tail     int // -1: all
	Since    time.Time
	Until    time.Time
	Index    int // the replica; 0: all
}

// LogLine is one line of one container's output.
type LogLine struct {
	Container ContainerStatus
	logs.Record
}

// Logs calls fn with the logged output of the services' containers (one-off
// ones left out), each container's lines in order, one call at a time.
// With Follow it keeps reading until every container has stopped for good
// (exited and not about to restart) or ctx ends.
func Logs(ctx context.Context, lo project.Options, eng Engine, o LogsOptions, fn func(LogLine) error) error {
	p, cs, err := SelectContainers(ctx, lo, eng, o.Services)
	if err != nil {
		return err
	}
	if o.Index > 0 {
		cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool { return c.Number() != o.Index })
	}
	// As docker compose logs -f: the containers that appear meanwhile
	// (up --scale, a recreate) are followed too.
	discover := func(c ContainerStatus) bool {
		return c.Project() == p.Name && !c.OneOff() && (len(o.Services) == 0 || slices.Contains(o.Services, c.Service())) &&
			(o.Index == 0 || c.Number() == o.Index)
	}
	return Follow(ctx, eng, cs, FollowOptions{Follow: o.Follow, Tail: o.Tail, Since: o.Since, Until: o.Until, Discover: discover}, fn)
}

// FollowOptions say which lines Follow passes on.
type FollowOptions struct {
	Follow       bool
	Tail         int
	Since, Until time.Time
	// Exited, when not nil, is told of each container that stopped for
	// good while followed; returning true ends the following of every
	// container (up --abort-on-container-exit).
	Exited func(ContainerStatus) bool
	// Required, when not nil, says which containers' end ends the
	// following of all (up SERVICE --attach-dependencies: the services
	// named, not their dependencies); nil: every container's.
	Required func(ContainerStatus) bool
	// Discover, when not nil, accepts the containers that appear while
	// followed, to follow them too (logs -f of a project that up
	// scales or recreates).
	Discover func(ContainerStatus) bool
}

// Follow reads the logs of cs, as Logs does.
func Follow(ctx context.Context, eng Engine, cs []ContainerStatus, o FollowOptions, fn func(LogLine) error) error {
	eg, ectx := errgroup.WithContext(ctx)
	f := &follower{ctx: ectx, eng: eng, o: o, fn: fn, eg: eg, stops: map[string]chan struct{}{}, read: map[string]chan struct{}{}}
	for _, c := range cs {
		f.add(c, logs.ReadOptions{Tail: o.Tail, Since: o.Since, Until: o.Until, Follow: o.Follow})
	}
	if o.Follow {
		eg.Go(func() error { return f.watchExits(cs) })
	}
	return eg.Wait()
}

// follower reads the logs of containers, one goroutine each.
type follower struct {
	ctx context.Context
	eng Engine
	o   FollowOptions
	fn  func(LogLine) error
	eg  *errgroup.Group

	mu    sync.Mutex // one fn at a time
	smu   sync.Mutex // stops and read
	stops map[string]chan struct{}
	read  map[string]chan struct{} // closed once a container's log is read to its end
}

// add follows c's log.
func (f *follower) add(c ContainerStatus, ro logs.ReadOptions) {
	stop, read := make(chan struct{}), make(chan struct{})
	f.smu.Lock()
	f.stops[c.ID], f.read[c.ID] = stop, read
	f.smu.Unlock()
	ro.Stop = stop
	f.eg.Go(func() error {
		defer close(read)
		return f.eng.Logs(f.ctx, c.ID, ro, func(r logs.Record) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.fn(LogLine{Container: c, Record: r})
		})
	})
}

func (f *follower) stop(id string) {
	f.smu.Lock()
	defer f.smu.Unlock()
	close(f.stops[id])
}

// exited tells FollowOptions.Exited of c once c's last lines are out, as
// docker compose prints "exited with code" after them.
func (f *follower) exited(c ContainerStatus) bool {
	if f.o.Exited == nil {
		return false
	}
	f.smu.Lock()
	read := f.read[c.ID]
	f.smu.Unlock()
	select {
	case <-read:
	case <-f.ctx.Done():
	}
	return f.o.Exited(c)
}

// watchExits closes the stop channel of each container once it stopped for
// good: seen exited, and not restarting, twice in a row (a container its
// policy restarts is exited for a moment before the supervisor says it
// restarts). With FollowOptions.Discover, the containers it accepts that
// appear meanwhile are followed too, from their first line.
func (f *follower) watchExits(cs []ContainerStatus) error {
	seen := map[string]int{}
	required := f.o.Required
	if required == nil {
		required = func(ContainerStatus) bool { return true }
	}
	open := 0
	for _, c := range cs {
		if required(c) {
			open++
		}
	}
	stopAll := func() {
		for _, c := range cs {
			if seen[c.ID] >= 0 {
				f.stop(c.ID)
				seen[c.ID] = -1
			}
		}
	}
	for open > 0 {
		select {
		case <-f.ctx.Done():
			return nil
		case <-time.After(4 * pollInterval):
		}
		all, err := f.eng.List(f.ctx)
		if err != nil {
			return err
		}
		now := map[string]ContainerStatus{}
		for _, c := range all {
			now[c.ID] = c
			if f.o.Discover == nil || !f.o.Discover(c) || slices.ContainsFunc(cs, func(o ContainerStatus) bool { return o.ID == c.ID }) {
				continue
			}
			// New (up --scale, a recreate): followed from its start.
			cs = append(cs, c)
			if required(c) {
				open++
			}
			f.add(c, logs.ReadOptions{Tail: -1, Until: f.o.Until, Follow: true})
		}
		for _, c := range cs {
			if seen[c.ID] < 0 {
				continue
			}
			cur, ok := now[c.ID]
			if ok && !cur.Done() && cur.Status != "created" {
				seen[c.ID] = 0
				continue
			}
			if seen[c.ID]++; seen[c.ID] < 2 {
				continue
			}
			f.stop(c.ID)
			seen[c.ID] = -1
			if required(c) {
				open--
			}
			if ok && f.exited(cur) {
				stopAll()
				return nil
			}
		}
	}
	stopAll() // what is followed beyond the required ones
	return nil
}
