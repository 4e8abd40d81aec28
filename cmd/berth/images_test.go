package main

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking layers sets owners")
	}
}

func TestLoadListSaveRemove(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	env := []string{"BERTH_ROOT=" + filepath.Join(dir, "root")}
	img, err := random.Image(32*1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("example/app:1.0")
	archive := filepath.Join(dir, "app.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := berth(t, dir, env, "load", "-i", archive)
	if code != 0 || out != "Loaded image: docker.io/example/app:1.0\n" {
		t.Fatalf("load: %d %q %q", code, out, errOut)
	}
	code, out, _ = berth(t, dir, env, "image", "ls")
	id, _ := img.ConfigName()
	if code != 0 || !strings.Contains(out, "example/app   1.0   "+id.Hex[:12]) {
		t.Errorf("image ls: %d\n%s", code, out)
	}
	saved := filepath.Join(dir, "saved.tar")
	if code, _, errOut := berth(t, dir, env, "save", "-o", saved, "example/app:1.0"); code != 0 {
		t.Fatalf("save: %s", errOut)
	}
	if _, err := tarball.ImageFromPath(saved, nil); err != nil {
		t.Errorf("the saved archive does not read back: %v", err)
	}
	code, out, _ = berth(t, dir, env, "image", "rm", id.Hex[:12])
	if code != 0 || out != "Untagged: docker.io/example/app:1.0\n" {
		t.Errorf("image rm: %d %q", code, out)
	}
	code, out, _ = berth(t, dir, env, "image", "ls", "-q")
	if code != 0 || out != "" {
		t.Errorf("after rm: %q", out)
	}
	layers, _ := os.ReadDir(filepath.Join(dir, "root", "images", "layers", "sha256"))
	for _, l := range layers {
		if l.IsDir() {
			t.Errorf("layer %s left after rm", l.Name())
		}
	}
	code, _, errOut = berth(t, dir, env, "load", "-i", filepath.Join(dir, "missing.tar"))
	if code != 1 || !strings.Contains(errOut, "missing.tar") {
		t.Errorf("load of a missing file: %d %q", code, errOut)
	}
}

func TestPullServices(t *testing.T) {
	needRoot(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	for _, repo := range []string{"web:1", "db:2"} {
		img, err := random.Image(16*1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.NewTag(host+"/"+repo, name.Insecure)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	compose := "services:\n" +
		"  web: {image: " + host + "/web:1, depends_on: [db]}\n" +
		"  db: {image: " + host + "/db:2}\n" +
		"  worker: {image: " + host + "/web:1}\n" +
		"  local: {image: " + host + "/nothere:1, pull_policy: never}\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"BERTH_ROOT=" + filepath.Join(dir, "root")}

	code, _, errOut := berth(t, dir, env, "pull", "web")
	if code != 0 || !strings.Contains(errOut, host+"/web:1 Pulled") || strings.Contains(errOut, "db:2") {
		t.Fatalf("pull web: %d\n%s", code, errOut)
	}
	code, _, errOut = berth(t, dir, env, "pull", "--include-deps", "--policy", "missing", "web")
	if code != 0 || !strings.Contains(errOut, host+"/web:1 Skipped - image is present") || !strings.Contains(errOut, host+"/db:2 Pulled") {
		t.Fatalf("pull --include-deps --policy missing web: %d\n%s", code, errOut)
	}
	code, _, errOut = berth(t, dir, env, "pull")
	if code != 0 || !strings.Contains(errOut, host+"/nothere:1 Skipped - pull_policy is never") {
		t.Fatalf("pull: %d\n%s", code, errOut)
	}
	code, out, _ := berth(t, dir, env, "images")
	for _, want := range []string{"db        " + host + "/db", "local     " + host + "/nothere   1     <missing>", "worker    " + host + "/web"} {
		if !strings.Contains(out, want) {
			t.Errorf("images lacks %q:\n%s", want, out)
		}
	}
	// A missing image is an error naming it, unless failures are ignored.
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  x: {image: "+host+"/ghost:1}\n  y: {image: "+host+"/db:2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = berth(t, dir, env, "pull")
	if code != 1 || !strings.Contains(errOut, "ghost:1") {
		t.Errorf("pull of a missing image: %d\n%s", code, errOut)
	}
	code, _, errOut = berth(t, dir, env, "pull", "--ignore-pull-failures")
	if code != 0 {
		t.Errorf("--ignore-pull-failures: %d\n%s", code, errOut)
	}
	code, _, errOut = berth(t, dir, env, "--progress", "json", "pull", "y")
	if code != 0 || !strings.Contains(errOut, `"status":"Pulled"`) {
		t.Errorf("--progress json: %d\n%s", code, errOut)
	}
	code, _, errOut = berth(t, dir, env, "pull", "-q", "y")
	if code != 0 || errOut != "" {
		t.Errorf("-q: %d %q", code, errOut)
	}
}
