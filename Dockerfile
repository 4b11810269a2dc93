# syntax=docker/dockerfile:1
# bfbridge: a static binary on distroless/static, as a non-root user, with its SQLite store in
# the /data volume.
#
#   docker build -t bfbridge .
#   docker run -p 8080:8080 -v bfbridge-data:/data -e BRIDGE_PUBLIC_URL=https://bridge.example.com bfbridge
#
# The image the test command builds offline (deploy/image) has the same layout, entrypoint, user,
# ports and volume; this file is for machines that can reach a registry.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: the SQLite store is modernc.org/sqlite, pure Go, so the binary needs no libc.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/bridge ./cmd/bridge \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="bfbridge" \
      org.opencontainers.image.description="Bridges Bot Framework bots and human contact centers" \
      org.opencontainers.image.source="https://github.com/bfbridge/bfbridge" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/bridge /usr/local/bin/bridge
# distroless "nonroot" is uid/gid 65532; /data is the store's directory, owned by it.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# The public listener (Direct Line, the Connector API, webhooks, /livez, /readyz). The admin
# listener (metrics, admin API) stays on 127.0.0.1:9090 inside the container unless
# BRIDGE_ADMIN_LISTEN says otherwise (and then BRIDGE_ADMIN_TOKEN is required).
ENV BRIDGE_LISTEN=0.0.0.0:8080 \
    BRIDGE_DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bridge"]
CMD ["serve"]
