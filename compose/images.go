package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/project"
	"github.com/berth-dev/berth/runtime/image"
)

// ImageStore is what the verbs need of the image store.
type ImageStore interface {
	Get(ctx context.Context, ref string) (*image.Image, error)
	Pull(ctx context.Context, ref string, o image.PullOptions) (*image.Image, error)
}

// PullEvent tells how obtaining one image goes; the CLI renders it.
type PullEvent struct {
	Image    string   // as the compose file names it
	Services []string // the services that use it
	Status   PullStatus
	Done     int64 // bytes so far, while pulling
	Total    int64
	Err      error
}

// PullStatus is the state of an image in a pull.
type PullStatus string

const (
	PullWaiting PullStatus = "Waiting"
	Pulling     PullStatus = "Pulling"
	Pulled      PullStatus = "Pulled"
	PullSkipped PullStatus = "Skipped"
	PullFailed  PullStatus = "Error"
)

// PullOptions are `berth pull`'s flags.
type PullOptions struct {
	IgnoreFailures bool   // --ignore-pull-failures
	IncludeDeps    bool   // --include-deps
	Policy         string // --policy: "" (always pull), "missing" or "always"
	Parallel       int    // at most this many images at once; 0 or less: no limit
	Events         func(PullEvent)
}

// PullDecision decides whether an image must be pulled, from the service's
// pull_policy (as compose-go reads it: refresh comes with its interval), the
// --policy flag, and what the store holds. It returns why, for the user.
func PullDecision(policy string, refresh time.Duration, flag string, present bool, pulledAt, now time.Time) (bool, string) {
	switch policy {
	case types.PullPolicyNever:
		return false, "pull_policy is never"
	case types.PullPolicyBuild:
		return false, "pull_policy is build"
	}
	switch flag {
	case "always":
		return true, "--policy always"
	case "":
		if policy != types.PullPolicyAlways {
			return true, "pull requested"
		}
	}
	switch policy {
	case types.PullPolicyAlways:
		return true, "pull_policy is always"
	case types.PullPolicyRefresh:
		if !present {
			return true, "image is missing"
		}
		if now.Sub(pulledAt) >= refresh {
			return true, fmt.Sprintf("pulled more than %s ago", refresh)
		}
		return false, "pulled recently"
	default: // missing, if_not_present
		if present {
			return false, "image is present"
		}
		return true, "image is missing"
	}
}

// Pull obtains the images of the selected services (of every service when
// none is named), each image once, in parallel.
func Pull(ctx context.Context, lo project.Options, store ImageStore, o PullOptions) error {
	lo.NoEnvResolution = true
	named := lo.Services
	p, err := project.Load(ctx, lo)
	if err != nil {
		return err
	}
	services := p.ServiceNames()
	if len(named) > 0 && !o.IncludeDeps {
		services = named
	}
	return pullServices(ctx, p, services, store, o, time.Now())
}

func pullServices(ctx context.Context, p *types.Project, services []string, store ImageStore, o PullOptions, now time.Time) error {
	events := o.Events
	if events == nil {
		events = func(PullEvent) {}
	}
	type job struct {
		image    string
		platform string
		services []string
		pull     bool
		reason   string
	}
	jobs := map[string]*job{}
	for _, name := range services {
		s, ok := p.Services[name]
		if !ok {
			return &project.Error{Err: fmt.Errorf("no such service: %s", name), Hint: "run `berth config --services` to list the project's services"}
		}
		if s.Image == "" {
			continue // build-only: nothing to pull (berth does not build images)
		}
		policy, refresh, err := s.GetPullPolicy()
		if err != nil {
			return &project.Error{Service: name, Key: "pull_policy", Err: err,
				Hint: "use always, never, missing, build, daily, weekly or every_<duration>"}
		}
		present, pulledAt := false, time.Time{}
		if img, err := store.Get(ctx, s.Image); err == nil {
			present, pulledAt = true, img.Record.Pulled
		} else if !errdefs.IsNotFound(err) {
			return err
		}
		if s.Build != nil && o.Policy == "" && policy != types.PullPolicyAlways {
			policy = types.PullPolicyBuild // docker compose skips images it would build
		}
		pull, reason := PullDecision(policy, refresh, o.Policy, present, pulledAt, now)
		j := jobs[s.Image]
		if j == nil {
			j = &job{image: s.Image, platform: s.Platform}
			jobs[s.Image] = j
		}
		j.services = append(j.services, name)
		if pull && !j.pull {
			j.pull, j.reason = true, reason
		} else if !j.pull {
			j.reason = reason
		}
	}

	eg, ctx := errgroup.WithContext(ctx)
	if o.Parallel > 0 {
		eg.SetLimit(o.Parallel)
	}
	var mu sync.Mutex
	var failed []error
	for _, ref := range slices.Sorted(maps.Keys(jobs)) {
		j := jobs[ref]
		if !j.pull {
			events(PullEvent{Image: j.image, Services: j.services, Status: PullSkipped, Err: errors.New(j.reason)})
			continue
		}
		events(PullEvent{Image: j.image, Services: j.services, Status: PullWaiting})
		eg.Go(func() error {
			events(PullEvent{Image: j.image, Services: j.services, Status: Pulling})
			_, err := store.Pull(ctx, j.image, image.PullOptions{
				Platform: j.platform,
				Progress: func(pr image.Progress) {
					events(PullEvent{Image: j.image, Services: j.services, Status: Pulling, Done: pr.Done, Total: pr.Total})
				},
			})
			if err != nil {
				events(PullEvent{Image: j.image, Services: j.services, Status: PullFailed, Err: err})
				if o.IgnoreFailures {
					return nil
				}
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
				return err
			}
			events(PullEvent{Image: j.image, Services: j.services, Status: Pulled})
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	return errors.Join(failed...)
}

// ServiceImage is an image of the project as `berth images` shows it.
type ServiceImage struct {
	Service string
	Image   *image.Image // nil when the store does not have it
	Ref     string       // as the compose file names it
}

// ServiceImages returns the image of each selected service (all when none
// is named), by service name.
func ServiceImages(ctx context.Context, lo project.Options, store ImageStore) ([]ServiceImage, error) {
	lo.NoEnvResolution = true
	p, err := project.Load(ctx, lo)
	if err != nil {
		return nil, err
	}
	var out []ServiceImage
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		ref := imageRef(p.Name, name, s.Image)
		si := ServiceImage{Service: name, Ref: ref}
		img, err := store.Get(ctx, ref)
		if err == nil {
			si.Image = img
		} else if !errdefs.IsNotFound(err) {
			return nil, err
		}
		out = append(out, si)
	}
	return out, nil
}
