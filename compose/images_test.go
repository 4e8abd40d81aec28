package compose

import (
	"testing"
	"time"
)

func TestPullDecision(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		policy  string
		refresh time.Duration
		flag    string
		present bool
		age     time.Duration
		want    bool
	}{
		{"missing", 0, "", true, 0, true}, // berth pull pulls
		{"missing", 0, "missing", true, 0, false},
		{"missing", 0, "missing", false, 0, true},
		{"if_not_present", 0, "missing", true, 0, false},
		{"always", 0, "missing", true, 0, true},
		{"always", 0, "", true, 0, true},
		{"never", 0, "always", false, 0, false},
		{"never", 0, "", false, 0, false},
		{"build", 0, "always", false, 0, false},
		{"missing", 0, "always", true, 0, true},
		{"refresh", day, "missing", true, 2 * time.Hour, false},
		{"refresh", day, "missing", true, 25 * time.Hour, true},
		{"refresh", day, "missing", false, 0, true},
		{"refresh", 7 * day, "missing", true, 6 * day, false},
		{"refresh", 90 * time.Minute, "missing", true, 2 * time.Hour, true},
	} {
		got, why := PullDecision(tc.policy, tc.refresh, tc.flag, tc.present, now.Add(-tc.age), now)
		if got != tc.want {
			t.Errorf("policy %s/%v, --policy %q, present %v, age %v: pull=%v (%s), want %v", tc.policy, tc.refresh, tc.flag, tc.present, tc.age, got, why, tc.want)
		}
	}
}
