// Package deploy holds posture's deployment files: systemd units (a
// long-running `posture serve`, or a timer starting `posture scan` then
// `posture notify`), Kubernetes manifests (a CronJob, or a Deployment of
// serve) and a Dockerfile (a static binary on distroless, nonroot, with a
// read-only root filesystem). Its tests verify them: systemd-analyze, the
// hardening fields, and every command line against the binary's flags.
package deploy
