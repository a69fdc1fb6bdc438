// Package deploy holds checks of the deployment files at the repository
// root (docker-compose.yml, Dockerfile, .dockerignore) and the compose
// schedule under deploy/schedule. Its tests parse the files, so a broken
// compose file fails `go test` on machines without Docker.
//
// It has no code to import: deployment lives in those files.
package deploy
