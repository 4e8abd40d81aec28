package compose

import (
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestExecEnv: exec -e KEY=VALUE as given; a bare KEY takes the value of
// berth's environment (an empty one too), and is left out when unset.
func TestExecEnv(t *testing.T) {
	environ := map[string]string{"FROM_SHELL": "yes", "EMPTY": ""}
	got := ExecEnv([]string{"A=1", "FROM_SHELL", "UNSET", "EMPTY", "B=x=y"}, environ)
	if want := []string{"A=1", "FROM_SHELL=yes", "EMPTY=", "B=x=y"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestRunSpec: what run changes in the service, as docker compose's
// applyRunOptions and prepareRun do.
func TestRunSpec(t *testing.T) {
	const yaml = `services:
  app:
    image: example/app:1
    entrypoint: [serve]
    command: [--port, "80"]
    restart: always
    deploy:
      restart_policy:
        condition: on-failure
    cap_add: [NET_ADMIN]
    cap_drop: [CHOWN]
`
	tests := []struct {
		name            string
		o               RunOptions
		args            []string
		capAdd, capDrop []string
	}{
		{name: "as the service", args: []string{"serve", "--port", "80"}, capAdd: []string{"CAP_NET_ADMIN"}, capDrop: []string{"CAP_CHOWN"}},
		{name: "command", o: RunOptions{Command: []string{"migrate"}}, args: []string{"serve", "migrate"}, capAdd: []string{"CAP_NET_ADMIN"}, capDrop: []string{"CAP_CHOWN"}},
		// The service's command was written for its own entrypoint.
		{name: "entrypoint alone", o: RunOptions{Entrypoint: []string{"sh"}}, args: []string{"sh"}, capAdd: []string{"CAP_NET_ADMIN"}, capDrop: []string{"CAP_CHOWN"}},
		// --entrypoint "": no entrypoint, the service's command.
		{name: "entrypoint cleared", o: RunOptions{Entrypoint: []string{}}, args: []string{"--port", "80"}, capAdd: []string{"CAP_NET_ADMIN"}, capDrop: []string{"CAP_CHOWN"}},
		{name: "entrypoint and command", o: RunOptions{Entrypoint: []string{"sh"}, Command: []string{"-c", "true"}}, args: []string{"sh", "-c", "true"}, capAdd: []string{"CAP_NET_ADMIN"}, capDrop: []string{"CAP_CHOWN"}},
		{name: "caps swapped", o: RunOptions{CapAdd: []string{"cap_chown"}, CapDrop: []string{"NET_ADMIN"}}, args: []string{"serve", "--port", "80"}, capAdd: []string{"CAP_CHOWN"}, capDrop: []string{"CAP_NET_ADMIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, svc := loadService(t, yaml, nil, nil)
			tt.o.Service = "app"
			c, err := runSpec(p, svc, testImage(v1.Config{Cmd: []string{"image-cmd"}}), nil, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Process.Args, tt.args) {
				t.Errorf("args %q, want %q", c.Process.Args, tt.args)
			}
			if !slices.Equal(c.CapAdd, tt.capAdd) || !slices.Equal(c.CapDrop, tt.capDrop) {
				t.Errorf("cap_add %q, cap_drop %q; want %q, %q", c.CapAdd, c.CapDrop, tt.capAdd, tt.capDrop)
			}
			// A one-off container never restarts.
			if c.Restart.Policy != "" && c.Restart.Policy != "no" {
				t.Errorf("restart policy %+v, want none", c.Restart)
			}
			if c.Labels[OneoffLabel] != "True" {
				t.Errorf("labels %v: not a one-off", c.Labels)
			}
			// The project is left as it was.
			if p.Services["app"].Restart != "always" || p.Services["app"].Deploy.RestartPolicy == nil {
				t.Error("runSpec changed the project's service")
			}
		})
	}
}

// TestRunSpecEnv: a bare -e KEY takes the project's value (the process's,
// then .env's), and leaves the service's when neither has one.
func TestRunSpecEnv(t *testing.T) {
	const yaml = `services:
  app:
    image: example/app:1
    command: [run]
    environment: {FROM_DOTENV: service, UNSET: service, FROM_SHELL: service}
`
	p, svc := loadService(t, yaml, []string{"FROM_SHELL=shell"}, map[string]string{".env": "FROM_DOTENV=dotenv\n"})
	c, err := runSpec(p, svc, testImage(v1.Config{}), map[string]string{"FROM_SHELL": "shell"}, RunOptions{Service: "app", Env: []string{"FROM_DOTENV", "UNSET", "FROM_SHELL", "NEW=1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM_DOTENV=dotenv", "UNSET=service", "FROM_SHELL=shell", "NEW=1"} {
		if !slices.Contains(c.Process.Env, want) {
			t.Errorf("env %q lacks %q", c.Process.Env, want)
		}
	}
}
