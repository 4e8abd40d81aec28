package supervisor

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime/spec"
)

func TestHealth(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name   string
		cfg    spec.Healthcheck
		probes []int // the second of each probe; a negative second is a failure at -s
		want   string
	}{
		{"a success makes it healthy", spec.Healthcheck{}, []int{30}, "healthy"},
		{"retries failures make it unhealthy", spec.Healthcheck{}, []int{-30, -60, -90}, "starting starting unhealthy"},
		{"a success resets the streak", spec.Healthcheck{Retries: 2}, []int{-1, 2, -3, 4, -5, -6}, "starting healthy healthy healthy healthy unhealthy"},
		{"failures in the start period do not count", spec.Healthcheck{StartPeriod: 10 * time.Second, Retries: 1}, []int{-2, -4, -8, -12}, "starting starting starting unhealthy"},
		{"a success in the start period counts", spec.Healthcheck{StartPeriod: 10 * time.Second}, []int{-2, 4}, "starting healthy"},
		{"once healthy, failures in the start period count", spec.Healthcheck{StartPeriod: 60 * time.Second, Retries: 1}, []int{2, -4}, "healthy unhealthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealth(tc.cfg, t0)
			var got []string
			for _, s := range tc.probes {
				code := 0
				if s < 0 {
					s, code = -s, 1
				}
				h.Record(ProbeResult{Start: at(s), End: at(s), ExitCode: code})
				got = append(got, h.Status)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %s, want %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func TestHealthSchedule(t *testing.T) {
	t0 := time.Now()
	h := NewHealth(spec.Healthcheck{StartPeriod: 20 * time.Second}, t0)
	if d := h.Next(t0.Add(time.Second)); d != 5*time.Second {
		t.Errorf("in the start period: %v, want the start interval 5s", d)
	}
	if d := h.Next(t0.Add(30 * time.Second)); d != 30*time.Second {
		t.Errorf("after the start period: %v, want the interval 30s", d)
	}
	h.Record(ProbeResult{Start: t0, ExitCode: 0})
	if d := h.Next(t0.Add(time.Second)); d != 30*time.Second {
		t.Errorf("healthy in the start period: %v, want the interval", d)
	}
	if h.Timeout() != 30*time.Second {
		t.Errorf("timeout %v, want Docker's 30s", h.Timeout())
	}
}

func TestHealthLog(t *testing.T) {
	h := NewHealth(spec.Healthcheck{}, time.Now())
	for i := range 7 {
		h.Record(ProbeResult{ExitCode: i % 2, Output: strings.Repeat("x", 5000)})
	}
	if len(h.Log) != 5 {
		t.Errorf("%d results kept, want the last 5", len(h.Log))
	}
	for _, r := range h.Log {
		if len(r.Output) != 4096 {
			t.Errorf("output of %d bytes kept, want 4 KiB", len(r.Output))
		}
	}
	if h.Log[4].ExitCode != 0 || h.Log[0].ExitCode != 0 {
		t.Errorf("not the last five in order: %+v", h.Log)
	}
}
