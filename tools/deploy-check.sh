#!/usr/bin/env bash
# Validates what deploy/ ships, offline, and shows each validator rejects a broken copy:
#   - deploy/hibp-mirror.service: `systemd-analyze verify` with no output at all (it exits 0 on
#     unknown keys and bad values, so its output is what is checked), and the exposure score of
#     `systemd-analyze security --offline=yes` at most MAX_EXPOSURE;
#   - deploy/kubernetes.yaml: kubernetes-validate (PyPI; carries the Kubernetes JSON schemas) in
#     strict mode, for the oldest and newest Kubernetes versions named below;
#   - deploy/nginx-hibp-mirror.conf: `nginx -t` on a config that includes it.
# tools/replicas.sh runs that nginx file for real; tools/deb-test.sh verifies the unit again
# where the package installed it.
#
#   tools/deploy-check.sh [--quick]     (--quick is the same: everything here takes seconds)
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXPOSURE=2.0
K8S_VERSIONS="1.30.0 1.37.0"
KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
WORK=$(mktemp -d /tmp/hibp-deploy-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
command -v kubernetes-validate >/dev/null || python3 -m pip install -q "$KUBERNETES_VALIDATE"

echo "== systemd unit"
# systemd is not PID 1 here, so the unit is verified inside a root directory holding the host's
# own units (for the targets it names), the real binary and kill(1); --man=no because the man
# pages exist only once the package is installed (deb-test.sh verifies with them).
[ -x target/release/hibp-mirror ] || cargo build --release --bin hibp-mirror
verify_unit() { # FILE -> prints verify's output
    local root="$WORK/root"
    rm -rf "$root"
    mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/usr/bin" "$root/bin"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
    cp target/release/hibp-mirror "$root/usr/bin/"
    cp "$(type -P kill)" "$root/bin/kill"
    cp "$1" "$root/etc/systemd/system/hibp-mirror.service"
    systemd-analyze verify --man=no --root="$root" hibp-mirror.service 2>&1 || echo "exit code $?"
}
out=$(verify_unit deploy/hibp-mirror.service)
[ -z "$out" ] || fail "systemd-analyze verify deploy/hibp-mirror.service: $out"
echo "systemd-analyze verify: clean"
sed 's/^ProtectSystem=strict/ProtectSystem=stric/' deploy/hibp-mirror.service >"$WORK/broken.service"
out=$(verify_unit "$WORK/broken.service")
[ -n "$out" ] || fail "systemd-analyze verify accepted ProtectSystem=stric"
echo "a broken copy is rejected: $(head -1 <<<"$out")"
exposure=$(systemd-analyze security --offline=yes deploy/hibp-mirror.service 2>&1 \
    | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "no exposure level from systemd-analyze security"
echo "systemd-analyze security --offline=yes: exposure $exposure (limit $MAX_EXPOSURE; 10 = unprotected)"
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' || fail "exposure $exposure > $MAX_EXPOSURE"

echo "== Kubernetes manifests"
for version in $K8S_VERSIONS; do
    kubernetes-validate --strict --quiet -k "$version" deploy/kubernetes.yaml \
        || fail "deploy/kubernetes.yaml against Kubernetes $version"
    echo "kubernetes-validate --strict -k $version: $(grep -c '^kind:' deploy/kubernetes.yaml) resources valid"
done
sed 's/readinessProbe:/readinesProbe:/' deploy/kubernetes.yaml >"$WORK/broken.yaml"
if kubernetes-validate --strict --quiet deploy/kubernetes.yaml "$WORK/broken.yaml" >/dev/null 2>&1; then
    fail "kubernetes-validate accepted a misspelt readinessProbe"
fi
echo "a broken copy is rejected"
# What the manifests promise, beyond the schema.
python3 - deploy/kubernetes.yaml <<'EOF'
import sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
dep = docs["Deployment"]["spec"]
pod = dep["template"]["spec"]
c = pod["containers"][0]
assert dep["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, "rollout must keep capacity"
assert dep["replicas"] >= 2
for probe in ("readinessProbe", "livenessProbe"):
    assert c[probe]["httpGet"]["path"] == "/healthz", probe
assert c["securityContext"]["readOnlyRootFilesystem"] is True
assert all(m.get("readOnly") for m in c["volumeMounts"]), "index volume must be read-only"
assert pod["securityContext"]["runAsNonRoot"] is True
pdb = docs["PodDisruptionBudget"]["spec"]
assert pdb["selector"] == dep["selector"], "PDB must select the Deployment's pods"
assert 1 <= pdb["minAvailable"] < dep["replicas"], "PDB must allow a drain but keep one"
print("manifest properties: rollout keeps capacity, probes on /healthz, read-only root and index, PDB matches")
EOF

echo "== nginx snippet"
mkdir -p "$WORK/nginx/logs"
sed "s#/var/log/nginx/#$WORK/nginx/logs/#g; s#listen 80;#listen 127.0.0.1:18080;#" \
    deploy/nginx-hibp-mirror.conf >"$WORK/nginx/hibp-mirror.conf"
cat >"$WORK/nginx/nginx.conf" <<EOF
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events {}
http {
    access_log off;
    include $WORK/nginx/hibp-mirror.conf;
}
EOF
nginx -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" || fail "nginx -t rejected deploy/nginx-hibp-mirror.conf"
echo "nginx -t: ok"

echo
echo "deploy check: passed"
