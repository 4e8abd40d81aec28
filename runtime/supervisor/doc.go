// Package supervisor is what keeps a project's containers as `up` left
// them after the command returns (shared/DESIGN.md, decision 4): restart
// policies, health checks, logs and events, in one detached process per
// project.
//
// Its decisions are pure and tested apart: Restarter (when and after how
// long a container that exited starts again, Docker's restart manager)
// and Health (a container's health from its probe results, Docker's
// health monitor). The process around them comes with the lifecycle
// issue.
package supervisor
