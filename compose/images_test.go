package compose

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/runtime/image"
)

func TestPullDecision(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		policy  string
		refresh time.Duration
		flag    string
		present bool
		age     time.Duration
		want    bool
	}{
		{"missing", 0, "", true, 0, true}, // berth pull pulls
		{"missing", 0, "missing", true, 0, false},
		{"missing", 0, "missing", false, 0, true},
		{"if_not_present", 0, "missing", true, 0, false},
		{"always", 0, "missing", true, 0, true},
		{"always", 0, "", true, 0, true},
		{"never", 0, "always", false, 0, false},
		{"never", 0, "", false, 0, false},
		{"build", 0, "always", false, 0, false},
		{"missing", 0, "always", true, 0, true},
		{"refresh", day, "missing", true, 2 * time.Hour, false},
		{"refresh", day, "missing", true, 25 * time.Hour, true},
		{"refresh", day, "missing", false, 0, true},
		{"refresh", 7 * day, "missing", true, 6 * day, false},
		{"refresh", 90 * time.Minute, "missing", true, 2 * time.Hour, true},
	} {
		got, why := PullDecision(tc.policy, tc.refresh, tc.flag, tc.present, now.Add(-tc.age), now)
		if got != tc.want {
			t.Errorf("policy %s/%v, --policy %q, present %v, age %v: pull=%v (%s), want %v", tc.policy, tc.refresh, tc.flag, tc.present, tc.age, got, why, tc.want)
		}
	}
}

// storeOf is an image store holding refs, none to pull.
type storeOf map[string]*image.Image

func (s storeOf) Get(_ context.Context, ref string) (*image.Image, error) {
	if img, ok := s[ref]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
}

func (s storeOf) Pull(context.Context, string, image.PullOptions) (*image.Image, error) {
	return nil, errdefs.ErrNotImplemented
}

// TestServiceImage: a service runs its image; one with only build, the
// image docker compose would have built, <project>-<service>, when it was
// loaded; without it, an error that says so and what to do.
func TestServiceImage(t *testing.T) {
	app, built := &image.Image{Ref: "app:1"}, &image.Image{Ref: "shop-api"}
	store := storeOf{"app:1": app, "shop-api": built}
	build := &types.BuildConfig{Context: "."}
	for _, tc := range []struct {
		name    string
		svc     types.ServiceConfig
		want    *image.Image
		wantErr string
	}{
		{"image", types.ServiceConfig{Name: "web", Image: "app:1"}, app, ""},
		{"image and build", types.ServiceConfig{Name: "web", Image: "app:1", Build: build}, app, ""},
		{"build only, loaded", types.ServiceConfig{Name: "api", Build: build}, built, ""},
		{"build only, not loaded", types.ServiceConfig{Name: "worker", Build: build},
			nil, "service \"worker\": build: not implemented: no image shop-worker, and berth does not build images\n  hint: build it elsewhere and load it under that name (docker build -t shop-worker ...; docker save shop-worker | berth load), or give the service an image"},
		{"image missing", types.ServiceConfig{Name: "web", Image: "app:2"},
			nil, "service \"web\": image: image app:2: not found\n  hint: load it with `berth load -i FILE` or pull it with `berth pull`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := serviceImage(context.Background(), store, "shop", tc.svc)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || img != tc.want {
				t.Fatalf("%v %v, want %v", img, err, tc.want)
			}
		})
	}
}
