// Package registrytest runs Debian's docker-registry (the CNCF distribution
// server, what most private registries run) on a loopback port with htpasswd
// basic auth, for the tests and benchmarks that pull from a real registry.
package registrytest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Registry is a running registry server.
type Registry struct {
	Host, User, Pass string // host:port on 127.0.0.1, and its one account

	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// Start runs the registry binary bin (docker-registry) with storage and
// configuration in dir, and an account whose bcrypt entry htpasswd (from
// apache2-utils) makes. It returns once the server answers; Stop ends it.
func Start(bin, htpasswd, dir string) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	user, pass := "berth", randomHex(12)
	// The registry only reads bcrypt entries; -B is bcrypt, -n prints the
	// entry instead of editing a file.
	entry, err := exec.Command(htpasswd, "-Bbn", user, pass).Output()
	if err != nil {
		return nil, fmt.Errorf("generating htpasswd entry: %w", commandError(err))
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), entry, 0o600); err != nil {
		return nil, fmt.Errorf("writing htpasswd: %w", err)
	}
	// The port is chosen by the kernel, then released for the registry to
	// bind: another process can take it in between, so a failed bind is
	// tried again on a new port.
	for attempt := 1; ; attempt++ {
		r, err := launch(bin, dir)
		if err == nil {
			r.User, r.Pass = user, pass
			return r, nil
		}
		if attempt == 3 || !errors.Is(err, errPortTaken) {
			return nil, fmt.Errorf("starting docker-registry: %w", err)
		}
	}
}

var errPortTaken = errors.New("port taken")

// launch starts one registry process on a fresh port and waits until it
// answers.
func launch(bin, dir string) (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	host := l.Addr().String()
	l.Close()
	port := host[strings.LastIndex(host, ":")+1:]
	config := filepath.Join(dir, "config-"+port+".yml")
	r := &Registry{Host: host, logPath: filepath.Join(dir, "registry-"+port+".log"), exited: make(chan struct{})}
	// Upload purging and the storage health check are background jobs that
	// only add noise to a short-lived server.
	yml := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
auth:
  htpasswd:
    realm: berth-test
    path: %s
`, filepath.Join(dir, "storage-"+port), host, randomHex(16), filepath.Join(dir, "htpasswd"))
	if err := os.WriteFile(config, []byte(yml), 0o600); err != nil {
		return nil, fmt.Errorf("writing registry config: %w", err)
	}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		return nil, fmt.Errorf("creating registry log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor

	r.cmd = exec.Command(bin, "serve", config)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	// If the test binary dies without running its cleanups (a panic, a
	// timeout), the kernel kills the registry instead of leaving it bound
	// to the port.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", bin, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()

	// Up means answering /v2/ with 401: the server is listening and auth is
	// configured.
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-r.exited:
			if strings.Contains(r.Log(100000), "address already in use") {
				return nil, fmt.Errorf("%s: %w", host, errPortTaken)
			}
			return nil, fmt.Errorf("docker-registry exited (%v); its log:\n%s", r.waitErr, r.Log(2000))
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return r, nil
			}
			r.Stop()
			return nil, fmt.Errorf("docker-registry at %s answered /v2/ with %s, want 401: is auth configured?", host, resp.Status)
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("docker-registry at %s did not answer within 20s (%v); its log:\n%s", host, err, r.Log(2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server and waits for it.
func (r *Registry) Stop() {
	r.cmd.Process.Kill()
	<-r.exited
}

// Log returns the last n bytes of the server's log.
func (r *Registry) Log(n int) string {
	b, _ := os.ReadFile(r.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// commandError adds what a failed command printed on stderr.
func commandError(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(exit.Stderr)))
	}
	return err
}
