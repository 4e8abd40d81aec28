package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/runtime/spec"
)

// TestNames: a container name is held by one container at a time: a
// second container with it is refused and leaves nothing, the name is
// free again once its holder is removed, a link left to a container that
// is gone is taken over, and a runtime whose state has no names yet (an
// earlier berth's) learns its containers' names before it gives one.
func TestNames(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	a := busyboxSpec(t, "true")
	a.Name = "taken"
	ctA, err := rt.Create(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if rt.exists(a.ID) {
			ctA.Delete(ctx, true)
		}
	})

	b := busyboxSpec(t, "true")
	b.ID += "-b"
	b.Name = "taken"
	if _, err := rt.Create(ctx, b); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `container name "taken" is already in use by container `+a.ID) {
		t.Fatalf("second container named taken: %v", err)
	}
	if rt.exists(b.ID) {
		t.Errorf("the refused container left its directory")
	}
	if _, err := rt.Create(ctx, withName(b, "bad/name")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a name with a slash: %v", err)
	}

	// Free again once its holder is gone.
	if err := ctA.Delete(ctx, true); err != nil {
		t.Fatal(err)
	}
	create(t, rt, b)

	// A link to a container that is gone (a crash between the removal of
	// its directory and of its link) is taken over.
	if err := os.Symlink("gone-container", filepath.Join(rt.namesDir(), "stale")); err != nil {
		t.Fatal(err)
	}
	create(t, rt, withName(a, "stale"))

	// No names directory (an earlier berth's state): made from the
	// containers there are.
	if err := os.RemoveAll(rt.namesDir()); err != nil {
		t.Fatal(err)
	}
	c := busyboxSpec(t, "true")
	c.Name = "taken"
	if _, err := rt.Create(ctx, c); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("a name held before the names directory existed: %v", err)
	}
	if holder, err := os.Readlink(filepath.Join(rt.namesDir(), "stale")); err != nil || holder != a.ID {
		t.Errorf("stale's link after the rebuild: %q %v", holder, err)
	}
}

func withName(c spec.Container, name string) spec.Container {
	c.Name = name
	return c
}
