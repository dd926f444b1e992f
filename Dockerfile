# swarmhook's release image: a static binary FROM scratch, run as a Swarm
# service on a manager with the Docker socket mounted.
#
# From source (needs the Go base image and module downloads):
#   docker build -t swarmhook .
# From a binary compiled here, with no base image to pull (BuildKit skips
# the unused source stage; this is what the test suite does):
#   CGO_ENABLED=0 go build -trimpath -o swarmhook ./cmd/swarmhook
#   cp /etc/ssl/certs/ca-certificates.crt .
#   DOCKER_BUILDKIT=1 docker build --build-arg BINARY=prebuilt -t swarmhook .
ARG BINARY=source

FROM golang:1.26-bookworm AS source
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/swarmhook ./cmd/swarmhook \
    && cp /etc/ssl/certs/ca-certificates.crt /out/

FROM scratch AS prebuilt
COPY swarmhook ca-certificates.crt /out/

FROM ${BINARY} AS binary

FROM scratch
COPY --from=binary /out/swarmhook /swarmhook
# HTTPS Git hosts and registries need the CA bundle.
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Job history, logs and Git mirrors: mount a volume here.
VOLUME /var/lib/swarmhook
EXPOSE 8080
ENTRYPOINT ["/swarmhook"]
CMD ["serve", "-config", "/etc/swarmhook/config.yaml"]
