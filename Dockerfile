# hibp-mirror: build a release binary, run `serve` as a non-root user over a read-only index volume.
#
#   docker build -t hibp-mirror .
#   docker run --rm -v hibp-data:/data hibp-mirror sync --output /data/sha1.idx   # or import
#   docker run -d -p 8080:8080 -v hibp-data:/data:ro hibp-mirror
#
# The builder and runtime share Debian bookworm, so the glibc the binary links is the one it runs on.

FROM rust:1-bookworm AS builder
WORKDIR /src
# Everything the manifest names (bins, the bench target, the bundled sample in data/).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY tools ./tools
COPY data ./data
COPY benches ./benches
RUN cargo build --release --locked --bin hibp-mirror \
    && install -m 0755 target/release/hibp-mirror /usr/local/bin/hibp-mirror

FROM debian:bookworm-slim
# ca-certificates: `sync` trusts the bundled webpki roots plus the system store, so a mirror
# behind an internal CA works once that CA is added here (update-ca-certificates).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 hibp \
    && useradd --system --uid 10001 --gid hibp --home-dir /nonexistent --shell /usr/sbin/nologin hibp \
    && mkdir -p /data && chown hibp:hibp /data
COPY --from=builder /usr/local/bin/hibp-mirror /usr/local/bin/hibp-mirror
USER hibp:hibp
# The index lives on a volume; mount it read-only for `serve` (`-v hibp-data:/data:ro`).
VOLUME ["/data"]
EXPOSE 8080
# No curl in the image: the binary probes its own /healthz over a plain TCP connection.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["hibp-mirror", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["hibp-mirror"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--index", "/data/sha1.idx"]
