package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The host ports the conformance projects publish (the suite's 8080 and
// 10001 inside the containers).
const (
	confHTTPPort = 18495
	confUDPPort  = 18496
)

// TestConformance runs the cases of the Compose Spec's conformance suite
// (github.com/compose-spec/conformance-tests) as that suite does: for each
// project, `up -d`, a look from the host at what the project's server
// answers, `down`; then nothing of the project may be left. Its images are
// stood in for by tests/conformance, built here, FROM scratch as the
// suite's client is: no /etc, no shell. The projects are the suite's, with
// `version: '3.7'`, but for the host ports.
func TestConformance(t *testing.T) {
	c := newCLI(t, "services: {}\n")
	archive := conformanceImages(t)
	if out, code := c.run("", "load", "-i", archive); code != 0 {
		t.Fatalf("berth load: %s", out)
	}
	ports := fmt.Sprintf("\n    ports:\n      - %d:8080\n", confHTTPPort)
	cases := []struct {
		name    string
		compose string
		files   map[string]string
		check   func(t *testing.T)
	}{
		{"simple lifecycle", `
services:
  test1:
    image: composespec/conformance-tests-server
`, nil, func(t *testing.T) { time.Sleep(time.Second) }},
		{"simple network", `
services:
  entry:
    image: composespec/conformance-tests-server` + ports + `    networks: [mynetwork]
  target:
    image: composespec/conformance-tests-server
    networks: [mynetwork]
networks:
  mynetwork: {}
`, nil, func(t *testing.T) {
			confGet(t, "/ping?address=target:8080/ping", "PONG FROM TARGET")
			// A name nothing has fails at once, not at a lookup's timeout.
			t0 := time.Now()
			confGet(t, "/ping?address=notatarget:8080/ping", "Could not reach address: notatarget:8080/ping")
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("an unknown name took %v to fail", d)
			}
		}},
		{"different networks", `
services:
  entry:
    image: composespec/conformance-tests-server` + ports + `    networks: [entrynetwork]
  target:
    image: composespec/conformance-tests-server
    networks: [targetnetwork]
networks:
  entrynetwork: {}
  targetnetwork: {}
`, nil, func(t *testing.T) {
			confGet(t, "/ping", "PONG FROM TARGET")
			t0 := time.Now()
			confGet(t, "/ping?address=target:8080/ping", "Could not reach address: target:8080/ping")
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("a service of another network took %v to fail", d)
			}
		}},
		{"volume file", `
services:
  entry:
    image: composespec/conformance-tests-server` + ports + `    volumes:
      - ./test_volume.txt:/volumes/test_volume.txt
`, map[string]string{"test_volume.txt": "MYVOLUME"}, func(t *testing.T) {
			confGet(t, "/volumefile?filename=test_volume.txt", "MYVOLUME")
		}},
		{"secret file", `
services:
  entry:
    image: composespec/conformance-tests-server` + ports + `    secrets:
      - source: test_secret
        target: /volumes/test_secret.txt
secrets:
  test_secret:
    file: ./test_secret.txt
`, map[string]string{"test_secret.txt": "MYSECRET"}, func(t *testing.T) {
			confGet(t, "/volumefile?filename=test_secret.txt", "MYSECRET")
		}},
		{"config file", `
services:
  entry:
    image: composespec/conformance-tests-server` + ports + `    configs:
      - source: test_config
        target: /volumes/test_config.txt
configs:
  test_config:
    file: ./test_config.txt
`, map[string]string{"test_config.txt": "MYCONFIG"}, func(t *testing.T) {
			confGet(t, "/volumefile?filename=test_config.txt", "MYCONFIG")
		}},
		{"udp port", fmt.Sprintf(`
services:
  entry:
    image: composespec/conformance-tests-server
    ports:
      - %d:8080/tcp
      - target: 10001
        published: %d
        protocol: udp
        mode: host
`, confHTTPPort, confUDPPort), nil, func(t *testing.T) {
			confGet(t, "/ping", "PONG FROM TARGET")
			conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", confUDPPort))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(`{"request":"myUdpvalue"}`)); err != nil {
				t.Fatal(err)
			}
			confGet(t, "/udp", "myUdpvalue")
		}},
		{"scaling", `
services:
  server:
    image: composespec/conformance-tests-server` + ports + `  client:
    image: composespec/conformance-tests-client
    deploy:
      replicas: 3
`, nil, func(t *testing.T) {
			// Each client records its HOSTNAME once, a second after its
			// start, with no depends_on: three different names.
			confGet(t, "/scalechecker", "3")
			out := c.must("ps", "-a", "--format", "{{.Name}} {{.State}} {{.ExitCode}}")
			for i := 1; i <= 3; i++ {
				if want := fmt.Sprintf("conformance-client-%d exited 0\n", i); !strings.Contains(out, want) {
					t.Errorf("ps -a: no %q in\n%s", want, out)
				}
			}
		}},
	}
	parent := c.t
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			defer func() { c.t = parent }()
			// A case that fails midway leaves nothing for the next one.
			defer func() {
				if t.Failed() {
					c.run("", "down", "--remove-orphans", "-t", "0")
				}
			}()
			before := c.hostState()
			c.writeCompose("version: '3.7'\nname: conformance\n" + tc.compose)
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out := c.must("up", "-d")
			if !strings.Contains(out, "the attribute `version` is obsolete") {
				t.Errorf("up -d: no warning about `version`:\n%s", out)
			}
			tc.check(t)
			c.must("down")
			c.checkClean(before)
			// Standard output: docker compose, as berth, warns about
			// `version` on standard error at every command.
			if out := c.stdout("ps", "-a", "-q"); out != "" {
				t.Errorf("ps -a -q after down: %q", out)
			}
		})
	}
}

// confGet asks the project's server for path, from the host, until it
// answers {"response":want} or 10 s have passed (the suite waits a
// second, then asks once).
func confGet(t *testing.T, path, want string) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", confHTTPPort, path)
	wantBody := fmt.Sprintf("{\"response\":%q}\n", want)
	client := &http.Client{Timeout: 5 * time.Second}
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got = string(b)
			if got == wantBody {
				return
			}
		} else {
			got = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %q, want %q", path, got, wantBody)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// conformanceImages builds tests/conformance statically and writes a
// docker-save archive of the suite's two images made of it
// (composespec/conformance-tests-server and -client), one layer each, no
// base image.
func conformanceImages(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "github.com/berth-dev/berth/tests/conformance")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building tests/conformance: %v\n%s", err, out)
	}
	program, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	if err := lw.WriteHeader(&tar.Header{Name: "server", Mode: 0o755, Size: int64(len(program)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	lw.Write(program)
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID := sha256.Sum256(layer.Bytes())
	files := []struct {
		name string
		data []byte
	}{{"layer.tar", layer.Bytes()}}
	var manifest []map[string]any
	for _, img := range []struct {
		name       string
		entrypoint []string
	}{
		{"composespec/conformance-tests-server:latest", []string{"/server"}},
		{"composespec/conformance-tests-client:latest", []string{"/server", "client"}},
	} {
		config, err := json.Marshal(map[string]any{
			"architecture": "amd64",
			"os":           "linux",
			"config":       map[string]any{"Entrypoint": img.entrypoint},
			"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
		})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(config)
		name := hex.EncodeToString(sum[:]) + ".json"
		files = append(files, struct {
			name string
			data []byte
		}{name, config})
		manifest = append(manifest, map[string]any{"Config": name, "RepoTags": []string{img.name}, "Layers": []string{"layer.tar"}})
	}
	m, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, struct {
		name string
		data []byte
	}{"manifest.json", m})
	archive := filepath.Join(dir, "images.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := tar.NewWriter(f)
	for _, file := range files {
		if err := w.WriteHeader(&tar.Header{Name: file.name, Mode: 0o644, Size: int64(len(file.data)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(file.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return archive
}
