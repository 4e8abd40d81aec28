package project

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"
)

// ServiceHash is the digest of a service's configuration that decides whether
// its containers must be recreated. Keys that never require a recreate are
// left out: scaling (scale, deploy.replicas), how the image is obtained
// (build, pull_policy), start order (depends_on) and profiles. The value is
// the one docker compose computes for the same service (its
// com.docker.compose.config-hash label), so the two tools agree on what changed.
func ServiceHash(s types.ServiceConfig) (string, error) {
	s.Build = nil
	s.PullPolicy = ""
	s.Scale = nil
	s.DependsOn = nil
	s.Profiles = nil
	if s.Deploy != nil {
		d := *s.Deploy
		d.Replicas = nil
		s.Deploy = &d
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("hashing service %q: %w", s.Name, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return "", fmt.Errorf("hashing service %q: %w", s.Name, err)
	}
	// The digest covers the top-level keys in a fixed order, so that a new
	// compose-go release reordering its struct fields does not change every
	// hash (and recreate every container) on upgrade. Keys not in the list
	// follow, sorted.
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(k string) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(k)
		b.Write(name)
		b.WriteByte(':')
		b.Write(fields[k])
		delete(fields, k)
	}
	for _, k := range hashKeyOrder {
		if _, ok := fields[k]; ok {
			write(k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		write(k)
	}
	b.WriteByte('}')
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// hashKeyOrder is the order of a service's keys in the hashed document: the
// Compose Specification's service keys, alphabetical in their historical
// grouping, with later additions at the end.
var hashKeyOrder = []string{
	"profiles", "annotations", "attach", "build", "develop", "blkio_config",
	"cap_add", "cap_drop", "cgroup_parent", "cgroup", "cpu_count", "cpu_percent",
	"cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpus", "cpuset",
	"cpu_shares", "command", "configs", "container_name", "credential_spec",
	"depends_on", "deploy", "device_cgroup_rules", "devices", "dns", "dns_opt",
	"dns_search", "dockerfile", "domainname", "entrypoint", "provider",
	"environment", "env_file", "expose", "extends", "external_links",
	"extra_hosts", "group_add", "gpus", "hostname", "healthcheck", "image", "init",
	"ipc", "isolation", "labels", "label_file", "links", "logging", "log_driver",
	"log_opt", "mem_limit", "mem_reservation", "memswap_limit", "mem_swappiness",
	"mac_address", "models", "net", "network_mode", "networks",
	"oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
	"privileged", "pull_policy", "read_only", "restart", "runtime", "scale",
	"secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
	"stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits",
	"use_api_socket", "user", "userns_mode", "uts", "volume_driver", "volumes",
	"volumes_from", "working_dir", "pre_start", "post_start", "pre_stop",
	"pull_refresh_after", "umask",
}
