// Package volume will own a project's data: named and anonymous volumes,
// bind and tmpfs mounts, the files of secrets and configs, and snapshots of
// volumes for resetting test data. It knows Linux and nothing about YAML.
package volume
