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
	_, cs, err := SelectContainers(ctx, lo, eng, o.Services)
	if err != nil {
		return err
	}
	if o.Index > 0 {
		cs = slices.DeleteFunc(cs, func(c ContainerStatus) bool { return c.Number() != o.Index })
	}
	return Follow(ctx, eng, cs, FollowOptions{Follow: o.Follow, Tail: o.Tail, Since: o.Since, Until: o.Until}, fn)
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
}

// Follow reads the logs of cs, as Logs does.
func Follow(ctx context.Context, eng Engine, cs []ContainerStatus, o FollowOptions, fn func(LogLine) error) error {
	var mu sync.Mutex
	stops := map[string]chan struct{}{}
	read := map[string]chan struct{}{} // closed once a container's log is read to its end
	for _, c := range cs {
		stops[c.ID] = make(chan struct{})
		read[c.ID] = make(chan struct{})
	}
	eg, ectx := errgroup.WithContext(ctx)
	for _, c := range cs {
		ro := logs.ReadOptions{Tail: o.Tail, Since: o.Since, Until: o.Until, Follow: o.Follow, Stop: stops[c.ID]}
		eg.Go(func() error {
			defer close(read[c.ID])
			return eng.Logs(ectx, c.ID, ro, func(r logs.Record) error {
				mu.Lock()
				defer mu.Unlock()
				return fn(LogLine{Container: c, Record: r})
			})
		})
	}
	if o.Follow {
		exited := o.Exited
		if exited != nil {
			// Told once the container's last lines are out, as docker
			// compose prints "exited with code" after them.
			exited = func(c ContainerStatus) bool {
				select {
				case <-read[c.ID]:
				case <-ectx.Done():
				}
				return o.Exited(c)
			}
		}
		eg.Go(func() error { return watchExits(ectx, eng, cs, stops, exited, o.Required) })
	}
	return eg.Wait()
}

// watchExits closes the stop channel of each container once it stopped for
// good: seen exited, and not restarting, twice in a row (a container its
// policy restarts is exited for a moment before the supervisor says it
// restarts).
func watchExits(ctx context.Context, eng Engine, cs []ContainerStatus, stops map[string]chan struct{}, exited, required func(ContainerStatus) bool) error {
	seen := map[string]int{}
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
		for id, ch := range stops {
			if seen[id] >= 0 {
				close(ch)
				seen[id] = -1
			}
		}
	}
	for open > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(4 * pollInterval):
		}
		all, err := eng.List(ctx)
		if err != nil {
			return err
		}
		now := map[string]ContainerStatus{}
		for _, c := range all {
			now[c.ID] = c
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
			close(stops[c.ID])
			seen[c.ID] = -1
			if required(c) {
				open--
			}
			if ok && exited != nil && exited(cur) {
				stopAll()
				return nil
			}
		}
	}
	stopAll() // what is followed beyond the required ones
	return nil
}
