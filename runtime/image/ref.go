package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Normalize spells a reference the way docker does: "redis" is
// "docker.io/library/redis:latest", "localhost:5000/app" is
// "localhost:5000/app:latest"; a digest reference keeps its digest. This is
// the key of the store's index.
func Normalize(ref string) (string, error) {
	r, err := parse(ref)
	if err != nil {
		return "", err
	}
	return familiar(r), nil
}

// parse reads a reference; registries on loopback may speak plain http,
// as docker allows.
func parse(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	if isLoopback(r.Context().RegistryStr()) {
		r, err = name.ParseReference(ref, name.WeakValidation, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
		}
	}
	return r, nil
}

func familiar(r name.Reference) string {
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	sep := ":"
	if _, ok := r.(name.Digest); ok {
		sep = "@"
	}
	return reg + "/" + r.Context().RepositoryStr() + sep + r.Identifier()
}

func isLoopback(registry string) bool {
	host := registry
	if i := strings.LastIndex(host, ":"); i > 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	host = strings.Trim(host, "[]")
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// Short is how docker shows a reference in tables: docker.io/library/ is
// left out.
func Short(ref string) (repository, tag string) {
	repo, tag := ref, ""
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		repo, tag = ref[:i], ref[i+1:]
	} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	repo = strings.TrimPrefix(repo, "docker.io/library/")
	repo = strings.TrimPrefix(repo, "docker.io/")
	return repo, tag
}
