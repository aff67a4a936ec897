# The reconciler's image: a static binary (as `make build` makes it) on a
# distroless base, running as the non-root user 65532. No shell: the task's
# health check runs `/reconciler healthcheck`, and the configuration comes
# from RECONCILER_CONFIG_YAML (deploy/cloudformation/reconciler.yaml).
# -tags noembedded leaves out the embedded AWS (internal/awssim), as in
# production. `make image` builds an equivalent image for linux/amd64 and
# linux/arm64 without a Docker engine (docs/image.md); this file is for
# machines that have one: docker build --build-arg VERSION=v1.2.3 .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -tags noembedded -ldflags "-s -w -X main.version=${VERSION}" -o /out/reconciler ./cmd/reconciler

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/reconciler /reconciler
USER 65532:65532
EXPOSE 9102
ENTRYPOINT ["/reconciler"]
CMD ["run"]
