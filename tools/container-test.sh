#!/usr/bin/env bash
# Builds the real Dockerfile and runs the image: import the bundled sample into a volume, serve it
# with a read-only root filesystem, check /range/5BAA6, the HEALTHCHECK status, the user the
# process runs as, that nothing can be written, and a clean stop. Prints the image size.
#
#   tools/container-test.sh [--quick] [--keep]
#
# Needs root (it installs docker.io and mmdebstrap with apt and starts dockerd if none answers).
# No image registry is reachable here, so the builder base is made locally: a Debian bookworm
# tree from mmdebstrap (with gcc, libc6-dev, ca-certificates) imported as an image, plus this
# machine's own rustup toolchain; the Dockerfile gets it through `--build-arg RUST_IMAGE=...`
# (its default, rust:1-bookworm, is what real users build with). The runtime stage is FROM
# scratch, so it needs no base image. Crates come from crates.io inside the build.
# --quick builds the same Dockerfile with --build-arg CARGO_PROFILE=dev: a cold release build
# inside the image took 17 min here (2 shared cores), the dev build a fraction of that; every
# check after the build is the same.
# --keep leaves the image, the local base images and the daemon in place (faster reruns).
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
PROFILE=release
for arg in "$@"; do
    case "$arg" in
        --quick) PROFILE=dev ;;
        --keep) KEEP=1 ;;
        *) echo "usage: $0 [--quick] [--keep]" >&2; exit 2 ;;
    esac
done

WORK=$(mktemp -d /tmp/hibp-container.XXXXXX)
# Debian's client: the /usr/local one some machines carry wants the buildx plugin for BuildKit.
DOCKER=/usr/bin/docker
IMAGE=hibp-mirror:container-test
RUST_IMAGE=hibp-local/rust:1-bookworm
BASE_IMAGE=hibp-local/debian-build:bookworm
NAME=hibp-container-test-$$
VOLUME=hibp-container-test-$$
DOCKERD_PID=
export DOCKER_BUILDKIT=1

say() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

cleanup() {
    set +e
    if [ -x "$DOCKER" ] && $DOCKER info >/dev/null 2>&1; then
        $DOCKER rm -f "$NAME" "$NAME-tls" "$NAME-direct" >/dev/null 2>&1
        $DOCKER volume rm "$VOLUME" >/dev/null 2>&1
        if [ "$KEEP" = 0 ]; then
            $DOCKER image rm "$IMAGE" >/dev/null 2>&1
        fi
    fi
    if [ -n "$DOCKERD_PID" ] && [ "$KEEP" = 0 ]; then
        kill "$DOCKERD_PID" 2>/dev/null
        wait "$DOCKERD_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

say "tools"
need=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || need+=(docker.io)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi

say "docker daemon"
if ! $DOCKER info >/dev/null 2>&1; then
    for driver in overlay2 vfs; do
        dockerd --storage-driver "$driver" >"$WORK/dockerd.log" 2>&1 &
        DOCKERD_PID=$!
        for _ in $(seq 60); do
            $DOCKER info >/dev/null 2>&1 && break
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 0.5
        done
        if $DOCKER info >/dev/null 2>&1; then
            echo "started dockerd (pid $DOCKERD_PID, storage driver $driver)"
            break
        fi
        echo "dockerd with $driver did not come up:" >&2
        tail -5 "$WORK/dockerd.log" >&2
        kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null
        DOCKERD_PID=
    done
    $DOCKER info >/dev/null 2>&1 || fail "no Docker engine could be started (see the dockerd lines above)"
fi
$DOCKER version --format 'engine {{.Server.Version}}, storage driver '"$($DOCKER info --format '{{.Driver}}')"

say "builder base image ($RUST_IMAGE)"
if ! $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    start=$SECONDS
    mmdebstrap --quiet --variant=minbase --include=ca-certificates,gcc,libc6-dev \
        bookworm "$WORK/base.tar"
    $DOCKER import "$WORK/base.tar" "$BASE_IMAGE" >/dev/null
    rm -f "$WORK/base.tar"
    echo "mmdebstrap + docker import: $((SECONDS - start)) s"
fi
if ! $DOCKER image inspect "$RUST_IMAGE" >/dev/null 2>&1; then
    # This machine's toolchain: rustc finds its sysroot next to its binary, so bin/ and lib/ are
    # enough (the docs in share/ are not copied). Hard links keep the context cheap to make.
    sysroot=$(rustc --print sysroot)
    mkdir -p "$WORK/rust/toolchain/bin"
    cp -al "$sysroot/lib" "$WORK/rust/toolchain/lib"
    cp -al "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$WORK/rust/toolchain/bin/"
    # Cargo trusts the host's CA bundle: where outbound TLS passes an inspecting proxy, the host
    # trusts its CA and the container must too. Only cargo is pointed at it (CARGO_HTTP_CAINFO);
    # the image's own /etc/ssl/certs, which the runtime stage copies, stays Debian's.
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rust/host-ca-certificates.crt"
    cat >"$WORK/rust/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY toolchain /usr/local/rust
COPY host-ca-certificates.crt /usr/local/share/host-ca-certificates.crt
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HTTP_CAINFO=/usr/local/share/host-ca-certificates.crt
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version
EOF
    $DOCKER build -q -t "$RUST_IMAGE" "$WORK/rust" >/dev/null
    rm -rf "$WORK/rust"
fi
$DOCKER run --rm "$RUST_IMAGE" rustc --version

say "docker build (the repository's Dockerfile)"
start=$SECONDS
$DOCKER build --progress=plain --build-arg RUST_IMAGE="$RUST_IMAGE" --build-arg CARGO_PROFILE="$PROFILE" \
    -t "$IMAGE" . \
    >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; fail "docker build failed"; }
grep -E 'Finished|Compiling hibp-mirror|hibp-mirror [0-9]' "$WORK/build.log" | tail -3 || true
echo "build ($PROFILE profile): $((SECONDS - start)) s"
size=$($DOCKER image inspect -f '{{.Size}}' "$IMAGE")
echo "image size: $size bytes ($((size / 1024 / 1024)) MiB)"
# What the final stage holds, file by file.
$DOCKER create --name "$NAME-files" "$IMAGE" >/dev/null
$DOCKER export "$NAME-files" | tar -tv | awk '$1 !~ /^d/ && $6 !~ /^(dev\/|proc\/|sys\/|\.dockerenv|etc\/(hosts|hostname|resolv.conf|mtab))/ {print "  " $3 "\t" $6}'
$DOCKER rm "$NAME-files" >/dev/null

say "import the sample into a volume"
$DOCKER volume create "$VOLUME" >/dev/null
$DOCKER run --rm -v "$VOLUME":/data -v "$PWD/data":/in:ro "$IMAGE" \
    import /in/sample-sha1.txt --output /data/sha1.idx --quiet
$DOCKER run --rm -v "$VOLUME":/data:ro "$IMAGE" verify /data/sha1.idx

say "serve (read-only root filesystem, index volume read-only)"
# The image's own HEALTHCHECK command, probed every second instead of every 30 s.
$DOCKER run -d --name "$NAME" --read-only -v "$VOLUME":/data:ro -p 127.0.0.1::8080 \
    --health-interval 1s --health-start-period 20s "$IMAGE" >/dev/null
status=
for _ in $(seq 60); do
    status=$($DOCKER inspect -f '{{.State.Health.Status}}' "$NAME")
    [ "$status" = healthy ] && break
    [ "$($DOCKER inspect -f '{{.State.Running}}' "$NAME")" = true ] || break
    sleep 0.5
done
$DOCKER inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{end}}' "$NAME" | sed 's/^/health probe exit codes: /'
[ "$status" = healthy ] || { $DOCKER logs "$NAME" >&2; fail "health status is '$status', not healthy"; }
echo "health status: $status"

# The base URL of container $1's port 8080, published on 127.0.0.1.
base_url() {
    local port base
    port=$($DOCKER port "$1" 8080/tcp | head -1 | sed 's/.*://')
    base="http://127.0.0.1:$port"
    if ! curl -fsS -o /dev/null "$base/healthz" 2>/dev/null; then
        # Some sandboxes cannot forward published ports; the bridge address still works.
        base="http://$($DOCKER inspect -f '{{.NetworkSettings.IPAddress}}' "$1"):8080"
    fi
    echo "$base"
}
base=$(base_url "$NAME")
echo "server at $base"
expected=$(grep -i '^5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:' data/sample-sha1.txt | tr -d '\r' | cut -d: -f2)
[ -n "$expected" ] || fail "the sample has no 5BAA61E4... line"
body=$(curl -fsS "$base/range/5BAA6" | tr -d '\r')
line=$(grep '^1E4C9B93F3F0682250B6CF8331B7EE68FD8:' <<<"$body" || true)
[ "$line" = "1E4C9B93F3F0682250B6CF8331B7EE68FD8:$expected" ] \
    || fail "/range/5BAA6 lacks 1E4C9B93F3F0682250B6CF8331B7EE68FD8:$expected (got '${line}')"
echo "/range/5BAA6: $(wc -l <<<"$body") lines, has $line"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/range/XYZ")
[ "$code" = 400 ] || fail "/range/XYZ answered $code, not 400"

say "user and filesystem"
[ "$($DOCKER inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$NAME")" = true ] || fail "root filesystem not read-only"
pid=$($DOCKER inspect -f '{{.State.Pid}}' "$NAME")
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
echo "pid 1 of the container ($(cat "/proc/$pid/comm")): Uid $uids, Gid $gids"
[ "$uids" = "10001 10001 10001 10001" ] && [ "$gids" = "10001 10001 10001 10001" ] || fail "not running as 10001:10001"
# Writes fail: the root filesystem, and the index volume mounted :ro.
for target in /probe.idx /data/probe.idx; do
    if out=$(echo '5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1' \
        | $DOCKER exec -i "$NAME" /usr/local/bin/hibp-mirror import - --output "$target" --quiet 2>&1); then
        fail "writing $target inside the container succeeded"
    fi
    grep -qiE 'read-only file system|permission denied' <<<"$out" || fail "unexpected error writing $target: $out"
    echo "write to $target refused: $(tail -1 <<<"$out")"
done
if $DOCKER exec "$NAME" /bin/sh -c true >/dev/null 2>&1; then fail "the image has a shell"; fi
echo "no /bin/sh in the image"

say "serve over TLS; the image's HEALTHCHECK switched to https by environment (no shell for --health-cmd)"
mkdir -p "$WORK/tls"
# A self-signed certificate as operators make them (marked as a CA: the probe pins it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
chmod 0644 "$WORK/tls/key.pem"  # readable by uid 10001 in the container
$DOCKER run -d --name "$NAME-tls" --read-only -v "$VOLUME":/data:ro -v "$WORK/tls":/certs:ro \
    -e HIBP_MIRROR_HEALTHCHECK_URL=https://127.0.0.1:8080/healthz \
    -e HIBP_MIRROR_HEALTHCHECK_CA_CERT=/certs/cert.pem \
    --health-interval 1s --health-start-period 20s "$IMAGE" \
    serve --listen 0.0.0.0:8080 --index /data/sha1.idx \
    --tls-cert /certs/cert.pem --tls-key /certs/key.pem >/dev/null
status=
for _ in $(seq 60); do
    status=$($DOCKER inspect -f '{{.State.Health.Status}}' "$NAME-tls")
    [ "$status" = healthy ] && break
    [ "$($DOCKER inspect -f '{{.State.Running}}' "$NAME-tls")" = true ] || break
    sleep 0.5
done
[ "$status" = healthy ] || { $DOCKER logs "$NAME-tls" >&2; fail "TLS container: health status is '$status'"; }
echo "TLS container health status: $status"
# The same probe over plain http, or trusting nothing given, must fail against it.
if $DOCKER exec -e HIBP_MIRROR_HEALTHCHECK_URL=http://127.0.0.1:8080/healthz "$NAME-tls" \
    /usr/local/bin/hibp-mirror healthcheck >/dev/null 2>&1; then
    fail "plain-http healthcheck passed against the TLS server"
fi
# Trusting the image's CA bundle instead of the server's certificate: refused.
if out=$($DOCKER exec -e HIBP_MIRROR_HEALTHCHECK_CA_CERT=/etc/ssl/certs/ca-certificates.crt \
    "$NAME-tls" /usr/local/bin/hibp-mirror healthcheck 2>&1); then
    fail "https healthcheck passed trusting the public CAs only"
fi
grep -q "invalid peer certificate" <<<"$out" || fail "unexpected healthcheck error: $out"
echo "trusting the public CAs only: $out"
$DOCKER rm -f "$NAME-tls" >/dev/null

say "direct cold reads (--cold-reads direct) under the container's seccomp profile"
# Docker 25 and later refuse io_uring in the default seccomp profile (moby/moby#46762; Debian's
# docker.io 20.10 still allows it): the server must then fall back to the blocking pool and still
# answer from direct reads. Where the engine allows io_uring, it is used. Either passes.
# An index of its own, large enough that the prefix asked for lies away from everything the
# server reads at start (pages a process maps stay cached, whatever drop_caches says).
mkdir -p "$WORK/direct"
python3 - "$WORK/direct/dump.txt" "$WORK/direct-expected.txt" <<'PY'
import random, sys
rng = random.Random(7)
hashes = sorted({rng.getrandbits(160) for _ in range(300_000)})
with open(sys.argv[1], "w") as out:
    for h in hashes:
        out.write(f"{h:040X}:{h % 1000 + 1}\n")
# The body /range must give for the prefix of the middle hash.
prefix = f"{hashes[len(hashes) // 2]:040X}"[:5]
lines = [f"{h:040X}"[5:] + f":{h % 1000 + 1}" for h in hashes if f"{h:040X}".startswith(prefix)]
with open(sys.argv[2], "w") as out:
    out.write(prefix + "\n" + "\r\n".join(lines))
PY
chmod 0755 "$WORK" "$WORK/direct"; chmod 0644 "$WORK/direct/dump.txt"  # readable by uid 10001
$DOCKER run --rm -v "$VOLUME":/data -v "$WORK/direct":/in:ro "$IMAGE" \
    import /in/dump.txt --output /data/direct.idx --quiet
$DOCKER run -d --name "$NAME-direct" --read-only -v "$VOLUME":/data:ro -p 127.0.0.1::8080 \
    -e HIBP_MIRROR_COLD_READS=direct "$IMAGE" serve --listen 0.0.0.0:8080 --index /data/direct.idx >/dev/null
for _ in $(seq 60); do
    $DOCKER exec "$NAME-direct" /usr/local/bin/hibp-mirror healthcheck >/dev/null 2>&1 && break
    sleep 0.5
done
direct=$(base_url "$NAME-direct")
# Drop the index from the page cache (this script runs as root), so the next request is cold.
sync; echo 1 > /proc/sys/vm/drop_caches
prefix=$(head -1 "$WORK/direct-expected.txt")
curl -fsS "$direct/range/$prefix" >"$WORK/direct-body.txt"
cmp -s "$WORK/direct-body.txt" <(tail -n +2 "$WORK/direct-expected.txt") \
    || fail "direct reads: /range/$prefix differs from the dump's lines for it"
echo "/range/$prefix: $(tr -cd '\n' <"$WORK/direct-body.txt" | wc -c) CRLFs, equal to the dump's lines"
reads=$(curl -fsS "$direct/metrics" | grep '^hibp_mirror_window_reads_total')
echo "$reads"
total=$(awk '{n += $2} END {print n + 0}' <<<"$reads")
[ "$total" -ge 1 ] || { $DOCKER logs "$NAME-direct" >&2; fail "the cold /range/$prefix was not read directly"; }
$DOCKER logs "$NAME-direct" 2>&1 | grep -i "io_uring" | sed 's/^/log: /' || true
$DOCKER rm -f "$NAME-direct" >/dev/null

say "stop"
start=$SECONDS
$DOCKER stop -t 20 "$NAME" >/dev/null
exit_code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$NAME")
$DOCKER logs "$NAME" 2>&1 | tail -2
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM"
echo "stopped in $((SECONDS - start)) s, exit code 0"

echo
echo "container test: passed (image $size bytes)"
