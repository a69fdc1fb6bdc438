# syntax=docker/dockerfile:1

# Build stage: static binaries, so the final image needs no libc.
# BUILDPLATFORM/TARGET* let `docker buildx build --platform linux/arm64`
# cross-compile natively instead of under emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src

# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# `docker build --build-arg VERSION=v1.2.3 --build-arg REVISION=$(git rev-parse HEAD)`
# names the build in `worker -version` and refreshq_build_info (.git is not
# in the build context, so Go cannot read the revision itself).
ARG VERSION=devel
ARG REVISION=unknown
# CGO_ENABLED=0: no libc, so the binaries run on distroless/static.
# -trimpath: no build paths in stack traces; -s -w: smaller binaries.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags="-s -w -X github.com/refreshq/refreshq/internal/buildinfo.version=${VERSION} -X github.com/refreshq/refreshq/internal/buildinfo.revision=${REVISION}" \
      -o /out/ ./cmd/worker ./cmd/enqueue

# Final stage: no shell, no package manager; CA certificates for the
# upstream APIs and tzdata come with the base image.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/enqueue /usr/local/bin/
# The worker serves the UI, /metrics and health on all interfaces inside the
# container; docker-compose.yml decides what is published.
ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
# uid 65532: never root, even if the base image changes its default.
USER nonroot:nonroot
# The image has no curl: the worker asks its own /healthz. (Liveness, not
# readiness: a worker draining or waiting for Redis must not be restarted.)
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/worker", "-healthcheck"]
ENTRYPOINT ["/usr/local/bin/worker"]
