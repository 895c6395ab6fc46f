# syntax=docker/dockerfile:1

# spanferry worker image.
#
#   docker build -t spanferry:local .
#   docker run --rm spanferry:local -h      # every variable the worker reads
#
# Build stage: a static, stripped binary of ./cmd/worker, cross-compiled for
# the target platform on the build platform (no emulation for multi-arch).
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src

# Modules in their own layer: downloaded again only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/worker ./cmd/worker

# The data directory is made here because the final image has no shell; it is
# copied owned by the non-root user so that a volume mounted on it (Docker
# copies the ownership of the image's directory into a new named volume)
# starts out writable.
RUN mkdir -p /out/data

# Final stage: no shell, no package manager, runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="spanferry worker" \
      org.opencontainers.image.description="Exports workflow results from NATS JetStream as OpenTelemetry traces" \
      org.opencontainers.image.source="https://github.com/spanferry/spanferry"

COPY --from=build /out/worker /worker
COPY --from=build --chown=65532:65532 /out/data /data

# WORKER_DATA_DIR holds the embedded NATS server's store (when NATS_URL is
# empty) and the file exporter's traces.jsonl. It must be writable by uid
# 65532: mount a volume there (Kubernetes: an emptyDir; the root filesystem
# can then stay read-only). With NATS_URL set and WORKER_EXPORTER=otlp nothing
# is written to it.
ENV WORKER_DATA_DIR=/data
VOLUME ["/data"]

# /metrics, /healthz and /readyz (WORKER_HTTP_ADDR, default :8080).
EXPOSE 8080

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/worker"]
CMD ["run"]
