#!/usr/bin/env bash
# Benchmark: build, verify and inspect a bundle of one large OCI image, against
# the floor of simply reading and SHA-256-hashing the same layer bytes.
#
#   bash bench/bundle.sh
#
# Environment (all optional):
#   BENCH_DIR     scratch folder                   (default /tmp/airgap-bench)
#   BENCH_SIZES   image sizes, K/M/G suffixes      (default "256M 1G")
#   BENCH_LAYERS  layers per image                 (default 8)
#   BENCH_RUNS    timed runs per step (median)     (default 3)
#   BENCH_DOC     Markdown file to update          (default docs/performance.md)
#   BENCH_KEEP    1 to keep the bundles afterwards (default: deleted)
#
# Generated layouts are kept in BENCH_DIR so that reruns skip generation. The
# script rewrites only its own section of BENCH_DOC, between the
# `bench:bundle` markers, and creates the file when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/airgap-bench}
BENCH_SIZES=${BENCH_SIZES:-"256M 1G"}
BENCH_LAYERS=${BENCH_LAYERS:-8}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/performance.md}
BENCH_KEEP=${BENCH_KEEP:-0}
EPOCH=1700000000
MARK_START='<!-- bench:bundle:start -->'
MARK_END='<!-- bench:bundle:end -->'

# Targets (from the spec).
T_BUILD=1.3    # build  <= 1.3 x reference hash
T_VERIFY=1.2   # verify <= 1.2 x reference hash
T_INSPECT=0.2  # inspect < 0.2 s
T_RSS=64       # peak RSS <= 64 MiB, flat as the bundle grows

# Shared helpers: log, die, warm, calc, maxcol, mincol, size_bytes, run_timed, median.
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

# --- 1. tools and binaries -------------------------------------------------

ensure_packages zstd /usr/bin/time:time jq

build_release_binaries

# --- helpers ---------------------------------------------------------------

mkdir -p "$BENCH_DIR"
TMP=$(mktemp -d "$BENCH_DIR/.run.XXXXXX")
cleanup() {
    rm -rf "$TMP"
    rm -f "${shm_bundle:-}" "${floor:-}"
}
trap cleanup EXIT



# maxcol LABEL COLUMN: the largest value of one column.
# mincol LABEL COLUMN: the smallest value of one column.

# warm FILE...: pull files into the page cache. Done before every timed run, not
# once: kernels that run DAMON pageout (as some VMs do) evict page cache left
# idle for a few tens of seconds.


# --- 2. fixtures, key ------------------------------------------------------

KEY=$BENCH_DIR/bench
if [[ ! -f $KEY.key || ! -f $KEY.pub ]]; then
    log "generating a signing key"
    "$BUNDLE" keygen --out "$KEY" --force >/dev/null
fi

# Per size: the layout (kept between runs), a manifest, and the layer blobs.
prepare_layout() {
    local size=$1 name=layout-$1-$BENCH_LAYERS
    local dir=$BENCH_DIR/$name stamp=$BENCH_DIR/$name.done
    if [[ ! -f $stamp ]]; then
        rm -rf "$dir"
        log "generating $name"
        "$GEN" bench-layout "$dir" --size "$size" --layers "$BENCH_LAYERS" >&2
        touch "$stamp"
    fi
    cat >"$BENCH_DIR/bench-$size.yaml" <<EOF
# Written by bench/bundle.sh.
name: bench-${size,,}
version: 1.0.0
description: Benchmark bundle, one image of $BENCH_LAYERS gzip layers ($size of random data).
images:
  - source: oci-layout:$name:bench/big:1.0
EOF
}

# Layer blob paths of the image in a layout, one a line.
layer_files() {
    local dir=$1 top
    top=$(jq -r '.manifests[0].digest' "$dir/index.json")
    jq -r '.layers[].digest' "$dir/blobs/sha256/${top#sha256:}" |
        while read -r d; do printf '%s\n' "$dir/blobs/sha256/${d#sha256:}"; done
}

# --- 3. measure ------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
ROWS=()    # main table rows
DETAILS=() # context table rows
VERDICTS=()
RSS_BUILD=()
RSS_VERIFY=()

for size in $BENCH_SIZES; do
    bytes=$(size_bytes "$size")
    prepare_layout "$size"
    dir=$BENCH_DIR/layout-$size-$BENCH_LAYERS
    mapfile -t layers < <(layer_files "$dir")
    ((${#layers[@]} == BENCH_LAYERS)) || die "$dir: expected $BENCH_LAYERS layers, found ${#layers[@]}"
    layer_bytes=$(stat -c %s "${layers[@]}" | awk '{ s += $1 } END { print s }')
    manifest=$BENCH_DIR/bench-$size.yaml
    out=$BENCH_DIR/bench-$size.bundle
    rm -f "$TMP"/*.times

    for ((i = 1; i <= BENCH_RUNS; i++)); do
        log "$size: reference hash, run $i"
        warm "${layers[@]}"
        run_timed hash "$HASH" "${layers[@]}"
        warm "${layers[@]}"
        run_timed sha256sum sha256sum "${layers[@]}"
    done
    # The reference hasher must agree with the blob names (and with sha256sum).
    while read -r hex path; do
        [[ ${path##*/} == "$hex" ]] || die "hash-files: $path hashed to $hex"
    done <"$TMP/hash.out"
    cmp -s "$TMP/hash.out" "$TMP/sha256sum.out" || die "hash-files and sha256sum disagree"

    for ((i = 1; i <= BENCH_RUNS; i++)); do
        log "$size: build, run $i"
        rm -f "$out"
        sync -f "$BENCH_DIR"
        warm "${layers[@]}"
        run_timed build env SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$manifest" \
            --key "$KEY.key" --out "$out" --json --skip-sbom
    done
    archive_size=$(stat -c %s "$out")
    [[ $(jq -r .archiveSize "$TMP/build.out") == "$archive_size" ]] || die "build --json archiveSize mismatch"

    # Context for the build time: the same build into tmpfs (no disk writeback,
    # the fsync is free), and the disk floor of writing the layer bytes to one
    # file and syncing it.
    shm_bundle=""
    if [[ -d /dev/shm && -w /dev/shm ]] &&
        (($(df -Pk /dev/shm | awk 'NR == 2 { print $4 }') * 1024 > 2 * layer_bytes)); then
        shm_bundle=/dev/shm/airgap-bench-$size.bundle
        for ((i = 1; i <= BENCH_RUNS; i++)); do
            log "$size: build into tmpfs, run $i"
            rm -f "$shm_bundle"
            warm "${layers[@]}"
            run_timed build_shm env SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$manifest" \
                --key "$KEY.key" --out "$shm_bundle" --json --skip-sbom
        done
        rm -f "$shm_bundle"
    fi
    floor=$BENCH_DIR/write-floor.bin
    for ((i = 1; i <= BENCH_RUNS; i++)); do
        log "$size: write floor (cat layers > file && sync file), run $i"
        rm -f "$floor"
        sync -f "$BENCH_DIR"
        warm "${layers[@]}"
        run_timed write_floor sh -c 'out=$1; shift; cat "$@" >"$out" && sync "$out"' sh "$floor" "${layers[@]}"
    done
    rm -f "$floor"

    for ((i = 1; i <= BENCH_RUNS; i++)); do
        log "$size: verify, run $i"
        warm "$out"
        run_timed verify "$INSTALL" verify "$out" --json --trust "$KEY.pub"
        run_timed inspect_b "$BUNDLE" inspect "$out" --json
        run_timed inspect_i "$INSTALL" inspect "$out" --json
    done
    blobs=$(jq -r .blobs "$TMP/verify.out")
    # Layers, config and manifest, plus the SBOM documents the build made.
    sboms=$("$INSTALL" sbom "$out" --trust "$KEY.pub" --list --json | jq length)
    ((blobs == BENCH_LAYERS + 2 + sboms)) || die "verify reports $blobs blobs, expected $((BENCH_LAYERS + 2 + sboms))"

    t_hash=$(median hash 1)
    t_sum=$(median sha256sum 1)
    t_build=$(median build 1)
    t_verify=$(median verify 1)
    t_ib=$(median inspect_b 1)
    t_ii=$(median inspect_i 1)
    r_build=$(calc '%.1f' "$(maxcol build 2) / 1024")
    r_verify=$(calc '%.1f' "$(maxcol verify 2) / 1024")
    r_ib=$(calc '%.1f' "$(maxcol inspect_b 2) / 1024")
    r_ii=$(calc '%.1f' "$(maxcol inspect_i 2) / 1024")
    x_build=$(calc '%.2f' "$t_build / $t_hash")
    x_verify=$(calc '%.2f' "$t_verify / $t_hash")
    ratio=$(calc '%.4f' "$archive_size / $layer_bytes")
    mib=$(calc '%.0f' "$layer_bytes / 1048576")
    RSS_BUILD+=("$r_build")
    RSS_VERIFY+=("$r_verify")

    ROWS+=("| $size ($BENCH_LAYERS layers) | $(calc '%.3f' "$t_hash") | $(calc '%.3f' "$t_build") (${x_build}×) | $(calc '%.3f' "$t_verify") (${x_verify}×) | $(calc '%.3f' "$t_ib") / $(calc '%.3f' "$t_ii") | $r_build / $r_verify | $ratio |")
    t_shm=n/a
    [[ -z $shm_bundle ]] || t_shm="$(calc '%.3f' "$(median build_shm 1)") ($(calc '%.2f' "$(median build_shm 1) / $t_hash")×)"
    DETAILS+=("| $size | $layer_bytes | $archive_size | $(calc '%.0f' "$mib / $t_hash") | $(calc '%.3f' "$t_sum") | $(calc '%.3f' "$(mincol build 1)")–$(calc '%.3f' "$(maxcol build 1)") | $t_shm | $(calc '%.3f' "$(median write_floor 1)") | $(median build 3) u + $(median build 4) s | $(median verify 3) u + $(median verify 4) s | $r_ib / $r_ii |")

    v() { VERDICTS+=("- $size: $1 — $2"); }
    if awk "BEGIN { exit !($x_build <= $T_BUILD) }"; then v "build ${x_build}× hash ≤ ${T_BUILD}×" met; else v "build ${x_build}× hash > ${T_BUILD}×" "**missed**"; fi
    if awk "BEGIN { exit !($x_verify <= $T_VERIFY) }"; then v "verify ${x_verify}× hash ≤ ${T_VERIFY}×" met; else v "verify ${x_verify}× hash > ${T_VERIFY}×" "**missed**"; fi
    ti="inspect $(calc '%.3f' "$t_ib") / $(calc '%.3f' "$t_ii") s"
    if awk "BEGIN { exit !($t_ib < $T_INSPECT && $t_ii < $T_INSPECT) }"; then v "$ti < $T_INSPECT s" met; else v "$ti, not all < $T_INSPECT s" "**missed**"; fi
    for r in "build:$r_build" "verify:$r_verify"; do
        if awk "BEGIN { exit !(${r#*:} <= $T_RSS) }"; then v "peak RSS ${r%%:*} ${r#*:} MiB ≤ $T_RSS MiB" met; else v "peak RSS ${r%%:*} ${r#*:} MiB > $T_RSS MiB" "**missed**"; fi
    done

    log "$size: hash $t_hash s, build $t_build s (${x_build}x), verify $t_verify s (${x_verify}x), inspect $t_ib/$t_ii s, RSS $r_build/$r_verify MiB, archive/layers $ratio"
    [[ $BENCH_KEEP == 1 ]] || rm -f "$out"
done

# Flat RSS: the largest size may use at most 10 % or 4 MiB more than the smallest.
flat() {
    local -n arr=$1
    local lo=${arr[0]} hi=${arr[-1]}
    if awk "BEGIN { d = $hi - $lo; exit !(d <= 4 || d <= 0.1 * $lo) }"; then
        VERDICTS+=("- peak RSS $2 flat as the bundle grows ($lo → $hi MiB) — met")
    else
        VERDICTS+=("- peak RSS $2 flat as the bundle grows ($lo → $hi MiB) — **missed**")
    fi
}
if ((${#RSS_BUILD[@]} > 1)); then
    flat RSS_BUILD build
    flat RSS_VERIFY verify
fi

# --- 4. report -------------------------------------------------------------

LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
if grep -qw sha_ni /proc/cpuinfo; then shani=yes; else shani=no; fi
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi
fstype=$(df -PT "$BENCH_DIR" | awk 'NR == 2 { print $2 }')
damon=""
for k in /sys/kernel/mm/damon/admin/kdamonds/*; do
    if [[ $(cat "$k/state" 2>/dev/null) == on ]] &&
        grep -qx pageout "$k"/contexts/*/schemes/*/action 2>/dev/null; then
        damon=", DAMON pageout on"
    fi
done

SECTION=$TMP/section.md
{
    echo "$MARK_START"
    echo "## Bundle build / verify / inspect (\`bench/bundle.sh\`)"
    echo
    echo "<!-- Generated by bench/bundle.sh; rerun it rather than editing this section. -->"
    echo
    echo "One OCI image of $BENCH_LAYERS gzip layers of random data, bundled with"
    echo "\`airgap-bundle build --skip-sbom\` (the archive write path; SBOM generation"
    echo "is measured separately by bench/sbom.sh), checked with \`airgap-install verify\`, summarised with"
    echo "\`airgap-bundle inspect\` and \`airgap-install inspect\`. The reference is"
    echo "\`hash-files\` (tests/src/bin/hash-files.rs): read the layer blobs in 1 MiB"
    echo "buffers and SHA-256 them with the \`sha2\` crate, the work a build and a verify"
    echo "cannot avoid. Inputs are pulled into the page cache before every timed run; times"
    echo "are the median of $BENCH_RUNS runs, peak RSS the largest of them (GNU time \`%M\`)."
    echo
    echo "- Command: \`bash bench/bundle.sh\` (BENCH_SIZES=\"$BENCH_SIZES\", BENCH_LAYERS=$BENCH_LAYERS, BENCH_RUNS=$BENCH_RUNS)"
    echo "- Machine: $(nproc) CPUs, $cpu, SHA-NI: $shani, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), scratch on $fstype$damon"
    echo "- Load average (1 min) at start / end: $LOAD_START / $LOAD_END (other work on the machine skews the numbers; rerun when it is idle)"
    echo "- Date: $(date -u +%Y-%m-%d), commit $commit, $(rustc --version 2>/dev/null || echo rustc unknown)"
    echo "- Targets: build ≤ ${T_BUILD}× hash, verify ≤ ${T_VERIFY}× hash, inspect < ${T_INSPECT} s, peak RSS ≤ ${T_RSS} MiB and flat as the bundle grows"
    echo
    echo "| Size | Reference hash s | Build s (× hash) | Verify s (× hash) | Inspect s (bundle / install) | Peak RSS MiB (build / verify) | Archive / layers |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Context: layer and archive bytes; reference hash throughput; \`sha256sum\` on the same"
    echo "files; the spread of the build runs; the same build with its output on tmpfs (/dev/shm: no disk writeback, free fsync);"
    echo "the disk floor of writing the layer bytes to one file and syncing it"
    echo "(\`cat LAYERS > F && sync F\`); CPU seconds (user + system, medians); inspect peak RSS."
    echo
    echo "| Size | Layer bytes | Archive bytes | Hash MiB/s | sha256sum s | Build s min–max | Build to tmpfs s (× hash) | Write + sync floor s | Build CPU s | Verify CPU s | Inspect RSS MiB (bundle / install) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    end_section "Targets:"
} >"$SECTION"

publish_section "$SECTION"
