#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time (libFuzzer's -max_total_time).
#
#   tools/fuzz.sh                 300 s per target
#   tools/fuzz.sh --seconds N     N s per target
#   tools/fuzz.sh --quick         20 s per target (CI)
#   tools/fuzz.sh TARGET...       only these targets
#   tools/fuzz.sh --seeds-only    only (re)generate the seed corpora
#
# Needs the nightly toolchain; installs cargo-fuzz if missing. Seeds are generated into
# fuzz/corpus/TARGET from the bundled sample and the shapes the tests use; the corpus grows across
# runs. A crash stops the script with exit 1 and leaves the input in fuzz/artifacts/TARGET/; turn
# it into a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=300
seeds_only=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) seconds=20 ;;
        --seconds) seconds="$2"; shift ;;
        --seeds-only) seeds_only=1 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) targets+=("$1") ;;
    esac
    shift
done
[ ${#targets[@]} -gt 0 ] || targets=(index_open dump_line sync_body audit_line routing)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# --- seeds ----------------------------------------------------------------------------------
corpus=fuzz/corpus
mkdir -p "$corpus"/{index_open,dump_line,sync_body,audit_line,routing}
seed() { printf '%b' "$2" > "$corpus/$1/seed-$3"; }

sha1=$(head -n 8 data/sample-sha1.txt)
ntlm=$(head -n 8 data/sample-ntlm.txt)
# Dump text: LF, CRLF, lowercase, both kinds, a duplicate, a bad count, a padding row, a BOM.
printf '%s\n' "$sha1" > "$corpus/dump_line/seed-sha1-lf"
printf '%s\n' "$sha1" | sed 's/$/\r/' > "$corpus/dump_line/seed-sha1-crlf"
printf '%s\n' "$sha1" | tr 'A-F' 'a-f' > "$corpus/dump_line/seed-sha1-lower"
printf '%s\n' "$ntlm" > "$corpus/dump_line/seed-ntlm"
printf '\xef\xbb\xbf%s\n%s\n' "$(head -n1 <<<"$sha1")" "$(head -n1 <<<"$sha1")" > "$corpus/dump_line/seed-dup-bom"
seed dump_line '5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:4294967296\n' bad-count
seed dump_line '5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:0\r\n' zero-count

# Sync bodies (first byte: kind bit and prefix): sorted suffixes with CRLF between lines.
body() { cut -c6- | sort | sed 's/$/\r/' | head -c -2; }
{ printf '\x00'; printf '%s\n' "$sha1" | body; } > "$corpus/sync_body/seed-sha1"
{ printf '\x01'; printf '%s\n' "$ntlm" | body; } > "$corpus/sync_body/seed-ntlm"
seed sync_body '\x001E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824\r\n1E4C9B93F3F0682250B6CF8331B7EE68FD9:0' padding
seed sync_body '\x001E4C9B93F3F0682250B6CF8331B7EE68FD9:1\r\n1E4C9B93F3F0682250B6CF8331B7EE68FD8:1' unsorted

# Audit lines: bare hashes, user:hash, pwdump, comments.
seed audit_line '5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8' bare-sha1
seed audit_line 'alice:8846F7EAEE8FB117AD06BDD830B7586C\r' user-ntlm
seed audit_line 'Administrator:500:aad3b435b51404eeaad3b435b51404ee:8846F7EAEE8FB117AD06BDD830B7586C:::' pwdump
seed audit_line 'bob:1001:aad3b435b51404eeaad3b435b51404ee:NO PASSWORD*********************:::' pwdump-none
seed audit_line '# comment' comment

# Requests: method, target, then header lines.
seed routing 'GET\n/range/5BAA6\naccept-encoding: gzip\nadd-padding: true' range-gzip-padded
seed routing 'HEAD\n/range/5baa6?mode=ntlm\nif-none-match: "x", W/"y"' range-ntlm-inm
seed routing 'OPTIONS\n/range/5BAA6\norigin: http://example\naccess-control-request-method: GET' preflight
seed routing 'GET\n/checkhash/5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8' checkhash
seed routing 'GET\n/healthz' healthz
seed routing 'GET\n/metrics' metrics
seed routing 'POST\n/range/00000?mode=sha1&mode=ntlm' post

# Index: mode byte (bit 0 patch the sample, bit 1 NTLM, bit 2 reseal the header CRC) + patches
# (region, offset u32 LE, value): the build time's top byte, a table entry, a record, a length.
seed index_open '\x01' sample-sha1
seed index_open '\x03' sample-ntlm
seed index_open '\x05\x00\x2f\x00\x00\x00\xff' build-time-high
seed index_open '\x05\x01\x08\x00\x00\x00\x01' table-entry
seed index_open '\x07\x02\x10\x00\x00\x00\x80' record-byte
seed index_open '\x01\x03\x00\x00\x90\x00\x00' truncated
seed index_open 'HIBPIDX\x00\x01\x00\x00\x00' raw-magic

[ "$seeds_only" = 0 ] || exit 0

# --- build and run --------------------------------------------------------------------------
# No sanitizer: the library has no unsafe code on these paths (the one mmap is not used), so
# ASan would only slow every run down; debug assertions and overflow checks stay on.
flags=(--sanitizer none)
(cd fuzz && cargo +nightly fuzz build "${flags[@]}")
status=0
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    start=$(date +%s)
    stamp=$(mktemp)
    mkdir -p "fuzz/artifacts/$target"
    if (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" -- \
            -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 2>&1 | grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|thread|Running|.*panicked|.*artifact_prefix|.*Test unit written)' ); then
        :
    fi
    found=$(find "fuzz/artifacts/$target" -newer "$stamp" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null || true)
    if [ -n "$found" ]; then
        echo "!! $target: failing inputs:" $found >&2
        status=1
    fi
    rm -f "$stamp"
    echo "== $target: ran $(( $(date +%s) - start ))s"
done
exit $status
