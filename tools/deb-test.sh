#!/usr/bin/env bash
# Builds the Debian package with cargo-deb, installs it with dpkg -i, checks what it installed
# (binary and --version, man pages, shell completions, the systemd unit verified in place),
# serves the bundled sample with the installed binary and checks /range/5BAA6, then removes the
# package again.
#
#   tools/deb-test.sh [--quick]     (--quick is the same: the release build is the slow part)
#
# Needs root (dpkg -i). Installs cargo-deb with `cargo install` and man-db/curl/systemd with apt
# when missing. Leaves the .deb in target/debian/.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
WORK=$(mktemp -d /tmp/hibp-deb-test.XXXXXX)
SERVER_PID=
cleanup() {
    set +e
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

need=()
command -v man >/dev/null || need+=(man-db)
command -v curl >/dev/null || need+=(curl)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

echo "== build"
cargo build --release --locked --bin hibp-mirror
rm -rf target/deb-assets
target/release/hibp-mirror generate man target/deb-assets/man >/dev/null
target/release/hibp-mirror generate completions target/deb-assets/completions >/dev/null
deb=$(cargo deb --no-build --locked --strip 2>&1 | tail -1)
[ -f "$deb" ] || fail "cargo deb did not print the package path (last line: $deb)"
echo "$deb: $(stat -c %s "$deb") bytes"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/  \1:/p'

echo "== install"
if dpkg -s hibp-mirror >/dev/null 2>&1; then dpkg -r hibp-mirror >/dev/null; fi
dpkg -i "$deb" >/dev/null
dpkg -L hibp-mirror | while read -r f; do [ -f "$f" ] && echo "  $f"; done | grep -E "bin/|systemd|man1/hibp-mirror(-serve)?\.1|completion"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
got=$(/usr/bin/hibp-mirror --version)
[ "$got" = "hibp-mirror $version" ] || fail "--version says '$got', Cargo.toml says $version"
echo "hibp-mirror --version: $got"

page=$(man -w hibp-mirror) || fail "man -w hibp-mirror found no page"
man -w hibp-mirror-serve >/dev/null || fail "no hibp-mirror-serve(1)"
# The page documents the real flags (generated from clap, not written by hand).
man -P cat hibp-mirror-serve 2>/dev/null | grep -q -- '--gzip-level' || fail "hibp-mirror-serve(1) lacks --gzip-level"
echo "man page: $page (hibp-mirror-serve(1) documents --gzip-level)"

for f in /usr/share/bash-completion/completions/hibp-mirror \
         /usr/share/zsh/vendor-completions/_hibp-mirror \
         /usr/share/fish/vendor_completions.d/hibp-mirror.fish; do
    [ -s "$f" ] || fail "missing completion file $f"
done
bash -c 'source /usr/share/bash-completion/completions/hibp-mirror && complete -p hibp-mirror' >/dev/null \
    || fail "the bash completion does not register for hibp-mirror"
echo "completions: bash (registers), zsh, fish"

unit=/usr/lib/systemd/system/hibp-mirror.service
out=$(systemd-analyze verify "$unit" 2>&1) || true
[ -z "$out" ] || fail "systemd-analyze verify $unit: $out"
echo "systemd-analyze verify $unit: clean (binary and man pages in place)"

echo "== serve with the installed binary, as another user"
# As under the unit's DynamicUser: root imports, an unprivileged user (nobody here) serves.
install -d -m 0755 "$WORK/index"
chmod 0755 "$WORK"
/usr/bin/hibp-mirror import data/sample-sha1.txt --output "$WORK/index/sha1.idx" --quiet 2>/dev/null
setpriv --reuid=65534 --regid=65534 --clear-groups \
    /usr/bin/hibp-mirror serve --listen 127.0.0.1:0 --index "$WORK/index/sha1.idx" 2>"$WORK/serve.log" &
SERVER_PID=$!
addr=
for _ in $(seq 100); do
    addr=$(sed -n 's/.*listening.*address=\([0-9.:]*\).*/\1/p' "$WORK/serve.log" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$WORK/serve.log" >&2; fail "the installed binary did not start serving"; }
expected=$(grep -i '^5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:' data/sample-sha1.txt | tr -d '\r' | cut -d: -f2)
line=$(curl -fsS "http://$addr/range/5BAA6" | tr -d '\r' | grep '^1E4C9B93F3F0682250B6CF8331B7EE68FD8:' || true)
[ "$line" = "1E4C9B93F3F0682250B6CF8331B7EE68FD8:$expected" ] || fail "/range/5BAA6 from $addr: '$line'"
echo "GET http://$addr/range/5BAA6 has $line (served by uid $(awk '/^Uid:/ {print $2}' "/proc/$SERVER_PID/status"))"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "serve exited non-zero after SIGTERM"
SERVER_PID=

echo "== remove"
dpkg -r hibp-mirror >/dev/null
[ ! -e /usr/bin/hibp-mirror ] && [ ! -e "$unit" ] || fail "dpkg -r left files behind"
echo "dpkg -r: binary and unit gone"

echo
echo "deb test: passed"
