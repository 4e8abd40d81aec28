package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PullOptions tune Pull.
type PullOptions struct {
	// Platform as os/arch[/variant] ("linux/arm64"); empty: the host's.
	Platform string
	// Progress, when set, is called as bytes arrive.
	Progress func(Progress)
	// Transport replaces the HTTP transport (tests, proxies).
	Transport http.RoundTripper
	// Keychain gives registry credentials; nil: ~/.docker/config.json and
	// its credential helpers, as docker.
	Keychain authn.Keychain
	// Jobs is how many layers download at once; 0: 4.
	Jobs int
}

// Pull fetches ref from its registry (registry API v2, token or basic
// auth) and stores it. For a multi-platform index it picks the platform
// asked for, else the host's. Layers the store has are not fetched again;
// a layer wanted by two pulls at once is fetched once.
func (s *Store) Pull(ctx context.Context, ref string, o PullOptions) (*Image, error) {
	r, err := parse(ref)
	if err != nil {
		return nil, err
	}
	key := familiar(r)
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if o.Platform != "" {
		p, err := v1.ParsePlatform(o.Platform)
		if err != nil {
			return nil, fmt.Errorf("pulling %s: invalid platform %q: %w", ref, o.Platform, err)
		}
		platform = *p
	}
	keychain := o.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	rt := o.Transport
	if rt == nil {
		rt = remote.DefaultTransport
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain),
		remote.WithPlatform(platform),
		remote.WithTransport(rt),
		remote.WithUserAgent("berth"),
		// Docker's behaviour on a busy or failing registry: back off and
		// try again on 408, 429 and 5xx.
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}),
	}
	// go-containerregistry keeps a config body cut mid-read as the config:
	// a retry opens the image afresh.
	var img v1.Image
	err = retry(ctx, 4, func() error {
		i, err := remote.Image(r, opts...)
		if err != nil {
			return err
		}
		if _, err := i.RawConfigFile(); err != nil {
			return err
		}
		img = i
		return nil
	})
	if err != nil {
		var status *transport.Error
		if errors.As(err, &status) && (status.StatusCode == http.StatusUnauthorized || status.StatusCode == http.StatusForbidden) {
			return nil, fmt.Errorf("pulling %s: %w\n  hint: log in to %s (docker login %s writes the credentials to ~/.docker/config.json, which berth reads), or check the image name",
				ref, err, r.Context().RegistryStr(), r.Context().RegistryStr())
		}
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	jobs := o.Jobs
	if jobs == 0 {
		jobs = 4
	}
	out, err := s.put(ctx, []string{key}, img, putOptions{source: compressedBlobs, jobs: jobs, progress: o.Progress, retries: 4})
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return out, nil
}
