package compose

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// Hook kinds, as the Compose Specification names the keys.
const (
	hookPostStart = "post_start"
	hookPreStop   = "pre_stop"
)

// maxHookOutput is how much of a failed hook's output its error keeps.
const maxHookOutput = 2048

// runHooks runs a service's post_start or pre_stop hooks in its container
// id, one after the other, as docker compose does: each as an exec with its
// own user, working directory, privileges and environment (over the
// container's). A hook that cannot start or exits non-zero fails, with its
// last output.
func runHooks(ctx context.Context, eng Engine, svc types.ServiceConfig, id, kind string) error {
	hooks := svc.PostStart
	if kind == hookPreStop {
		hooks = svc.PreStop
	}
	for i, h := range hooks {
		var env []string
		for _, k := range slices.Sorted(maps.Keys(h.Environment)) {
			if v := h.Environment[k]; v != nil {
				env = append(env, k+"="+*v)
			}
		}
		var out bytes.Buffer
		code, err := eng.Exec(ctx, id, ExecOptions{Args: h.Command, Env: env, User: h.User, WorkingDir: h.WorkingDir,
			Privileged: h.Privileged, Stdout: &out, Stderr: &out})
		if err == nil && code != 0 {
			err = fmt.Errorf("exited with status %d", code)
		}
		if err != nil {
			msg := strings.TrimSpace(out.String())
			if len(msg) > maxHookOutput {
				msg = "..." + msg[len(msg)-maxHookOutput:]
			}
			if msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
			return fmt.Errorf("service %q: %s[%d] hook: %w", svc.Name, kind, i, err)
		}
	}
	return nil
}

// preStop runs the pre_stop hooks of c's service before berth stops c, when
// c runs. A hook that fails is a warning, not a reason to leave the
// container running: stop, down and a recreate go on.
func preStop(ctx context.Context, eng Engine, p *types.Project, c ContainerStatus, warn func(string)) {
	svc, ok := p.Services[c.Service()]
	if !ok || len(svc.PreStop) == 0 || c.Status != "running" {
		return
	}
	if err := runHooks(ctx, eng, svc, c.ID, hookPreStop); err != nil && warn != nil {
		warn(err.Error())
	}
}

// postStart runs the post_start hooks of service in its container id,
// which berth just started.
func postStart(ctx context.Context, eng Engine, p *types.Project, service, id string) error {
	svc, ok := p.Services[service]
	if !ok || len(svc.PostStart) == 0 {
		return nil
	}
	return runHooks(ctx, eng, svc, id, hookPostStart)
}
