package compose

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/runtime/spec"
)

func TestHealthcheckMerge(t *testing.T) {
	imageCheck := &v1.HealthConfig{Test: []string{"CMD-SHELL", "image-probe"}, Interval: 7 * time.Second, Retries: 9}
	for _, tc := range []struct {
		name  string
		yaml  string
		image *v1.HealthConfig
		want  *spec.Healthcheck
	}{
		{"none anywhere", ``, nil, nil},
		{"the image's", ``, imageCheck, &spec.Healthcheck{Test: []string{"CMD-SHELL", "image-probe"}, Interval: 7 * time.Second, Retries: 9}},
		{"the service's test, the image's interval and retries", `
    healthcheck:
      test: ["CMD", "probe", "--fast"]
      timeout: 2s
      start_period: 10s
      start_interval: 1s`, imageCheck,
			&spec.Healthcheck{Test: []string{"CMD", "probe", "--fast"}, Interval: 7 * time.Second, Timeout: 2 * time.Second, StartPeriod: 10 * time.Second, StartInterval: time.Second, Retries: 9}},
		{"a string test is CMD-SHELL", `
    healthcheck:
      test: pg_isready
      retries: 2`, nil, &spec.Healthcheck{Test: []string{"CMD-SHELL", "pg_isready"}, Retries: 2}},
		{"disable: true", `
    healthcheck:
      disable: true`, imageCheck, nil},
		{"test NONE", `
    healthcheck:
      test: ["NONE"]`, imageCheck, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, svc := loadService(t, "services:\n  app:\n    image: example/app:1"+tc.yaml+"\n", nil, nil)
			c, err := ContainerSpec(p, svc, 1, testImage(v1.Config{Cmd: []string{"run"}, Healthcheck: tc.image}), nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", c.Healthcheck) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("healthcheck %+v, want %+v", c.Healthcheck, tc.want)
			}
		})
	}
}

func TestRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want spec.Restart
		err  string
	}{
		{``, spec.Restart{Policy: "no"}, ""},
		{`restart: always`, spec.Restart{Policy: "always"}, ""},
		{`restart: unless-stopped`, spec.Restart{Policy: "unless-stopped"}, ""},
		{`restart: on-failure`, spec.Restart{Policy: "on-failure"}, ""},
		{`restart: "on-failure:3"`, spec.Restart{Policy: "on-failure", MaxRetries: 3}, ""},
		{`restart: "always:3"`, spec.Restart{}, "only on-failure takes a maximum"},
		{"deploy:\n      restart_policy: {condition: on-failure, max_attempts: 5}", spec.Restart{Policy: "on-failure", MaxRetries: 5}, ""},
		{"deploy:\n      restart_policy: {condition: any}", spec.Restart{Policy: "always"}, ""},
		{"restart: \"no\"\n    deploy:\n      restart_policy: {condition: any}", spec.Restart{Policy: "no"}, ""},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			yaml := "services:\n  app:\n    image: example/app:1\n"
			if tc.yaml != "" {
				yaml += "    " + tc.yaml + "\n"
			}
			p, svc := loadService(t, yaml, nil, nil)
			c, err := ContainerSpec(p, svc, 1, testImage(v1.Config{Cmd: []string{"run"}}), nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Restart != tc.want {
				t.Errorf("restart %+v, want %+v", c.Restart, tc.want)
			}
		})
	}
}
