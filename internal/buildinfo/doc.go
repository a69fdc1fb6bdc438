// Package buildinfo says which build of refreshq is running: the version,
// the VCS revision and the Go version, for `worker -version`, `enqueue
// -version` and the refreshq_build_info metric.
//
// The version comes from the linker (-ldflags "-X
// github.com/refreshq/refreshq/internal/buildinfo.version=v1.2.3", as the
// Dockerfile passes it), else from the module version Go recorded
// (`go install ...@v1.2.3`), else "devel". The revision comes from the
// linker too (…buildinfo.revision=…), else from what Go records when it
// builds in a git checkout.
package buildinfo
