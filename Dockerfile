# hibp-mirror: a release binary in an image that holds only the binary, the C runtime it links,
# CA certificates and a passwd entry for its non-root user (uid/gid 10001). No shell, no package
# manager. `serve` runs as that user and works with `docker run --read-only`.
#
#   docker build -t hibp-mirror .
#   docker run --rm -v hibp-data:/data -v "$PWD":/in:ro hibp-mirror import /in/pwnedpasswords.txt --output /data/sha1.idx
#   docker run -d --read-only -p 8080:8080 -v hibp-data:/data:ro hibp-mirror
#
# Needs BuildKit (the default builder since Docker 23; `DOCKER_BUILDKIT=1` on Docker 20.10) for
# the cargo cache mounts. The build image is a build argument so that a site with its own
# registry can point it at its mirror (tools/container-test.sh builds with a local one); the
# runtime stage needs no base image.
ARG RUST_IMAGE=rust:1-bookworm

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Everything the manifest names (bins, benches, the bundled sample in data/).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY tools ./tools
COPY data ./data
COPY benches ./benches
# The registry and target directories are cache mounts: a rebuild after a source change
# recompiles only this crate, not its ~200 dependencies.
# CARGO_PROFILE=dev compiles faster (cold, on 2 busy cores: 604 s against 1027 s) and is what
# CI's container test builds; images for use keep the default, release.
ARG CARGO_PROFILE=release
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile "$CARGO_PROFILE" --locked --bin hibp-mirror \
    && dir=$(if [ "$CARGO_PROFILE" = dev ]; then echo debug; else echo "$CARGO_PROFILE"; fi) \
    && install -D -s -m 0755 "target/$dir/hibp-mirror" /rootfs/usr/local/bin/hibp-mirror
# The runtime tree: the dynamic libraries the binary names (glibc, libgcc_s, libm and the loader,
# found with ldd rather than listed by hand), the CA bundle (`sync` trusts the system store as
# well as its bundled roots, so an internal CA added here is honoured), the user, and /data
# owned by that user so a fresh named volume is writable for `import` and `sync`.
RUN set -eu; \
    for lib in $(ldd /rootfs/usr/local/bin/hibp-mirror | grep -o '/[^ ]*'); do \
        cp --parents -L "$lib" /rootfs/; \
    done; \
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt; \
    printf 'hibp:x:10001:10001:hibp-mirror:/nonexistent:/sbin/nologin\n' > /rootfs/etc/passwd; \
    printf 'hibp:x:10001:\n' > /rootfs/etc/group; \
    install -d -m 0755 -o 10001 -g 10001 /rootfs/data /rootfs/tmp; \
    chmod 1777 /rootfs/tmp; \
    /rootfs/usr/local/bin/hibp-mirror --version

FROM scratch
COPY --from=builder /rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# The index lives on a volume; mount it read-only for `serve` (`-v hibp-data:/data:ro`).
VOLUME ["/data"]
EXPOSE 8080
# No curl in the image: the binary probes its own /healthz, http://127.0.0.1:8080/healthz unless
# HIBP_MIRROR_HEALTHCHECK_URL says otherwise. For a server run with --tls-cert, set it to the
# https:// URL and HIBP_MIRROR_HEALTHCHECK_CA_CERT to the certificate (no shell here, so
# `docker run --health-cmd`, which needs one, cannot replace this).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/hibp-mirror", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hibp-mirror"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--index", "/data/sha1.idx"]
