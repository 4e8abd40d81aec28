package compose

import (
	"reflect"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/project"
)

func TestDependsOnLabel(t *testing.T) {
	for _, tc := range []struct {
		label string
		want  types.DependsOnConfig
	}{
		{"", types.DependsOnConfig{}},
		{"db:service_healthy:true", types.DependsOnConfig{"db": {Condition: "service_healthy", Restart: true, Required: true}}},
		{"a:service_started:false,b:service_completed_successfully:false", types.DependsOnConfig{
			"a": {Condition: "service_started", Required: true},
			"b": {Condition: "service_completed_successfully", Required: true},
		}},
		{"old", types.DependsOnConfig{"old": {Condition: "service_started", Required: true}}},
	} {
		if got := dependsOnLabel(tc.label); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.label, got, tc.want)
		}
	}
}

func TestKnownName(t *testing.T) {
	env := []string{"COMPOSE_PROJECT_NAME=fromenv"}
	for _, tc := range []struct {
		lo   project.Options
		want string
	}{
		{project.Options{}, ""},
		{project.Options{Name: "flag"}, "flag"},
		{project.Options{Name: "flag", Environ: env}, "flag"},
		{project.Options{Name: "flag", Files: []string{"x.yaml"}}, ""}, // -f names the files to load
		{project.Options{Name: "flag", Files: []string{"x.yaml"}, Environ: env}, "fromenv"},
		{project.Options{Environ: env}, "fromenv"},
		{project.Options{Environ: append(env, "COMPOSE_PROJECT_NAME=")}, ""}, // the last one counts
	} {
		if got := knownName(tc.lo); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.lo, got, tc.want)
		}
	}
}
