#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each with libFuzzer
# through cargo fuzz, from the seed corpora in fuzz/seeds/ (the repo's real
# fixtures; docs/reliability.md §3) plus what earlier runs kept in fuzz/corpus/.
# Prints one row per target: executions, coverage, corpus size, crashes.
# A crash, leak, timeout or out-of-memory makes it exit non-zero and
# names the input (fuzz/artifacts/TARGET/...) and the command to replay it.
#
# Usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 s, all targets)
#   AIRGAP_FUZZ_TABLE=FILE also writes the table as Markdown to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
secs=${1:-60}
shift || true
case $secs in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;; esac

ensure_build_packages
rustup toolchain list | grep -q '^nightly' || {
    echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 2
}
command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz

cd fuzz
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
# Seeds that are built rather than stored (signed archives, docker save
# tarballs) are made from the fixtures by the seed generator.
if [ -f make-seeds.sh ]; then bash make-seeds.sh; fi
cargo +nightly fuzz build --release

logs=$(mktemp -d "${TMPDIR:-/tmp}/airgap-fuzz.XXXXXX")
trap 'rm -rf "$logs"' EXIT
rows=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t" "artifacts/$t"
    args=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -print_final_stats=1)
    [ -f "dicts/$t.dict" ] && args+=(-dict="dicts/$t.dict")
    echo "fuzz.sh: $t for ${secs}s" >&2
    status=0
    cargo +nightly fuzz run --release "$t" "corpus/$t" "seeds/$t" -- "${args[@]}" \
        >"$logs/$t.log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$logs/$t.log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        failed=1
        artifact=$(grep -o 'artifacts/[^ ]*' "$logs/$t.log" | tail -1 || true)
        result="FAILED (exit $status)"
        grep -E 'ERROR|panicked|SUMMARY|timeout|out-of-memory' "$logs/$t.log" | head -5 >&2 || true
        if [ -n "$artifact" ]; then
            echo "fuzz.sh: $t: input fuzz/$artifact; replay: cd fuzz && cargo +nightly fuzz run --release $t $artifact" >&2
        else
            tail -20 "$logs/$t.log" >&2
        fi
    fi
    rows+=("| $t | ${execs:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $result |")
done

table=$(
    echo "| target | executions | coverage (edges) | features | corpus | result |"
    echo "|---|---:|---:|---:|---:|---|"
    printf '%s\n' "${rows[@]}"
)
echo "$table"
[ -n "${AIRGAP_FUZZ_TABLE:-}" ] && echo "$table" >"$AIRGAP_FUZZ_TABLE"
exit "$failed"
