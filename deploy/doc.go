// Package deploy holds checks of the deployment files: those at the
// repository root (docker-compose.yml, Dockerfile, .dockerignore,
// .env.example), the compose schedule under deploy/schedule, Prometheus's
// configuration and alert rules (deploy/prometheus, checked and unit-tested
// with promtool), and the Kubernetes manifests (deploy/k8s, rendered with
// kubectl kustomize). Its tests parse the files, so a broken compose file
// fails `go test` on machines without Docker.
//
// It has no code to import: deployment lives in those files.
package deploy
