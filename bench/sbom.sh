#!/usr/bin/env bash
# Benchmark: the share of build time that SBOM generation takes. The same
# manifest is built with `airgap-bundle build` (SBOMs generated, the default)
# and with `--skip-sbom`, alternately, on the same machine and inputs; the
# share is (with - without) / with, the build time SBOMs add. Beside it, the
# `sbom.seconds` the build itself reports (`build --json`), which covers
# scanning the layers and writing the documents.
#
#   bash bench/sbom.sh
#
# Environment (all optional):
#   BENCH_DIR     scratch folder                   (default /tmp/airgap-bench)
#   BENCH_SIZES   image sizes, K/M/G suffixes      (default "256M 1G")
#   BENCH_LAYERS  layers per image                 (default 8)
#   BENCH_RUNS    timed runs per step (median)     (default 3)
#   BENCH_DEBIAN  OCI layout of a real Debian image, tagged `debian`
#                 (default target/test-rootfs/bookworm-minbase/oci, which the
#                 real-Debian SBOM test builds; its row is skipped when missing)
#   BENCH_NOTE    a sentence added to the section (say, that it was a smoke run)
#   BENCH_DOC     Markdown file to update          (default docs/performance.md)
#   BENCH_KEEP    1 to keep the bundles afterwards (default: deleted)
#
# The synthetic images are bench/bundle.sh's: one OCI image of BENCH_LAYERS
# gzip layers of random data per size, generated as it generates them, in the
# same BENCH_DIR/layout-SIZE-LAYERS folders, so either script reuses the
# other's. Random data holds no packages, so those rows measure the floor of
# generation (every layer decompressed and its tar stream walked); the Debian
# image (debootstrap --variant=minbase, one layer) measures real work: dpkg
# database, copyright files, every executable read for Go and Rust build data.
# The script rewrites only its own section of BENCH_DOC, between the
# `bench:sbom` markers, and creates the file when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/airgap-bench}
BENCH_SIZES=${BENCH_SIZES:-"256M 1G"}
BENCH_LAYERS=${BENCH_LAYERS:-8}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_DEBIAN=${BENCH_DEBIAN:-$ROOT/target/test-rootfs/bookworm-minbase/oci}
BENCH_NOTE=${BENCH_NOTE:-}
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/performance.md}
BENCH_KEEP=${BENCH_KEEP:-0}
EPOCH=1700000000
MARK_START='<!-- bench:sbom:start -->'
MARK_END='<!-- bench:sbom:end -->'

# Target: SBOM generation must not dominate the build (issue 5: in a comparable
# tool it takes about half).
T_SHARE=0.5

# Shared helpers: log, die, warm, calc, maxcol, mincol, size_bytes, run_timed,
# median, gen_layout.
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

# --- 1. tools and binaries -------------------------------------------------

# shellcheck source=../scripts/lib.sh
. "$ROOT/scripts/lib.sh"
ensure_packages jq /usr/bin/time:time

log "building release binaries"
(cd "$ROOT" && cargo build --release --quiet -p airgap-bundle -p airgap-install -p airgap-e2e)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BUNDLE=$TARGET_DIR/release/airgap-bundle
INSTALL=$TARGET_DIR/release/airgap-install
GEN=$TARGET_DIR/release/gen-fixtures
for b in "$BUNDLE" "$INSTALL" "$GEN"; do
    [[ -x $b ]] || die "missing $b"
done

# --- helpers ---------------------------------------------------------------

mkdir -p "$BENCH_DIR"
TMP=$(mktemp -d "$BENCH_DIR/.run.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

# Layer blob paths of the (only) image in a layout, one a line.
layer_files() {
    local dir=$1 top
    top=$(jq -r '.manifests[0].digest' "$dir/index.json")
    jq -r '.layers[].digest' "$dir/blobs/sha256/${top#sha256:}" |
        while read -r d; do printf '%s\n' "$dir/blobs/sha256/${d#sha256:}"; done
}

# --- 2. fixtures, key ------------------------------------------------------

KEY=$BENCH_DIR/bench
if [[ ! -f $KEY.key || ! -f $KEY.pub ]]; then
    log "generating a signing key"
    "$BUNDLE" keygen --out "$KEY" --force >/dev/null
fi

# Cases: "label|layout|ref|what". The synthetic layouts are bench/bundle.sh's
# (its default seed 1 and reference bench/big:1.0).
CASES=()
for size in $BENCH_SIZES; do
    dir=$BENCH_DIR/layout-$size-$BENCH_LAYERS
    gen_layout "$dir" "$(size_bytes "$size")" "$BENCH_LAYERS" 1 bench/big:1.0
    CASES+=("$size|$dir|bench/big:1.0|$size of random data, $BENCH_LAYERS gzip layers")
done
DEBIAN_NOTE=""
if [[ ! -f $BENCH_DEBIAN/index.json ]]; then
    DEBIAN_NOTE="No Debian row: $BENCH_DEBIAN is missing (the real-Debian SBOM test, \`bash tests/run.sh\` as root, builds it with debootstrap and umoci)."
    log "skipping the Debian image: $BENCH_DEBIAN is missing"
else
    [[ $(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$BENCH_DEBIAN/index.json") == debian ]] ||
        die "$BENCH_DEBIAN: expected one image tagged debian"
    suite=$(awk '$1 == "suite" { print $2 }' "$BENCH_DEBIAN/../build.txt" 2>/dev/null || true)
    CASES+=("debian|$BENCH_DEBIAN|debian|Debian ${suite:-?} minbase (debootstrap), 1 gzip layer")
fi

# --- 3. measure ------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
ROWS=()
DETAILS=()
VERDICTS=()

for c in "${CASES[@]}"; do
    IFS='|' read -r label dir ref what <<<"$c"
    mapfile -t layers < <(layer_files "$dir")
    layer_bytes=$(stat -c %s "${layers[@]}" | awk '{ s += $1 } END { print s }')
    manifest=$BENCH_DIR/sbom-$label.yaml
    cat >"$manifest" <<EOF
# Written by bench/sbom.sh.
name: bench-sbom-${label,,}
version: 1.0.0
description: SBOM benchmark bundle, one image ($what).
images:
  - source: oci-layout:$dir:$ref
    name: bench/${label,,}
    tag: "1.0"
EOF
    out=$BENCH_DIR/sbom-$label.bundle
    rm -f "$TMP"/*.times "$TMP"/*.sbom

    # Alternate the two builds so that drift in the machine's load hits both.
    for ((i = 1; i <= BENCH_RUNS; i++)); do
        log "$label: build with SBOMs, run $i"
        rm -f "$out"
        sync -f "$BENCH_DIR"
        warm "${layers[@]}"
        run_timed with env SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$manifest" \
            --key "$KEY.key" --out "$out" --json
        jq -r '[.sbom.seconds, .sbom.packages, .sbom.imagesScanned, (.sbom.warnings | length), .blobs] | @tsv' \
            "$TMP/with.out" >>"$TMP/with.sbom"
        log "$label: build --skip-sbom, run $i"
        rm -f "$out"
        sync -f "$BENCH_DIR"
        warm "${layers[@]}"
        run_timed without env SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$manifest" \
            --key "$KEY.key" --out "$out" --json --skip-sbom
        # Reference: stock gzip decompressing the same layers, one after the
        # other, which any scan of their contents has to do at least once.
        log "$label: gzip -dc of the layers, run $i"
        warm "${layers[@]}"
        run_timed gunzip bash -c 'for l; do gzip -dc "$l"; done >/dev/null' _ "${layers[@]}"
    done
    # The skipped build scans no image and has four fewer blobs (two
    # documents for the image's one platform, two for the bundle); the last
    # bundle carries none.
    [[ $(jq -r '.sbom.imagesScanned // 0' "$TMP/without.out") == 0 ]] \
        || die "$label: build --skip-sbom scanned images"
    read -r _ packages scanned warnings blobs_with < <(tail -n 1 "$TMP/with.sbom")
    blobs_without=$(jq -r .blobs "$TMP/without.out")
    ((scanned == 1 && blobs_with == blobs_without + 4)) ||
        die "$label: $scanned platforms scanned, $blobs_with blobs with SBOMs and $blobs_without without; expected 1 and a difference of 4"
    [[ $("$INSTALL" sbom "$out" --trust "$KEY.pub" --list --json | jq length) == 0 ]] ||
        die "$label: the --skip-sbom bundle lists SBOMs"

    t_with=$(median with 1)
    t_without=$(median without 1)
    t_sbom=$(awk '{ print $1 }' "$TMP/with.sbom" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    share=$(calc '%.2f' "($t_with - $t_without) / $t_with * 100")
    own=$(calc '%.2f' "$t_sbom / $t_with * 100")
    r_with=$(calc '%.1f' "$(maxcol with 2) / 1024")
    r_without=$(calc '%.1f' "$(maxcol without 2) / 1024")
    mib_s=$(calc '%.0f' "$layer_bytes / 1048576 / $t_sbom")
    t_gunzip=$(median gunzip 1)
    vs_gunzip=$(calc '%.2f' "$t_sbom / $t_gunzip")

    ROWS+=("| $label | $(calc '%.3f' "$t_with") | $(calc '%.3f' "$t_without") | **$share %** | $(calc '%.3f' "$t_sbom") ($own %) | $(calc '%.3f' "$t_gunzip") | ${vs_gunzip}× | $packages | $warnings |")
    DETAILS+=("| $label | $what | $layer_bytes | $mib_s | $(calc '%.3f' "$(mincol with 1)")–$(calc '%.3f' "$(maxcol with 1)") | $(calc '%.3f' "$(mincol without 1)")–$(calc '%.3f' "$(maxcol without 1)") | $(median with 3) u + $(median with 4) s | $(median without 3) u + $(median without 4) s | $r_with / $r_without |")
    if awk "BEGIN { exit !($share <= $T_SHARE * 100) }"; then
        VERDICTS+=("- $label: SBOMs take $share % of the build ≤ $(calc '%.0f' "$T_SHARE * 100") % — met")
    else
        VERDICTS+=("- $label: SBOMs take $share % of the build > $(calc '%.0f' "$T_SHARE * 100") % — **missed**")
    fi
    log "$label: build $t_with s with SBOMs, $t_without s without: $share % (sbom.seconds $t_sbom s, $own %), $packages packages, RSS $r_with / $r_without MiB"
    [[ $BENCH_KEEP == 1 ]] || rm -f "$out"
done

# --- 4. report -------------------------------------------------------------

LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi
fstype=$(df -PT "$BENCH_DIR" | awk 'NR == 2 { print $2 }')

SECTION=$TMP/section.md
{
    echo "$MARK_START"
    echo "## SBOM generation's share of a build (\`bench/sbom.sh\`)"
    echo
    echo "<!-- Generated by bench/sbom.sh; rerun it rather than editing this section. -->"
    echo
    [[ -z $BENCH_NOTE ]] || { echo "$BENCH_NOTE"; echo; }
    echo "The same one-image manifest built with \`airgap-bundle build --json\` (SBOMs"
    echo "generated, the default) and with \`--skip-sbom\`, alternately; inputs are pulled"
    echo "into the page cache before every timed run, times are the median of $BENCH_RUNS runs."
    echo "**SBOM share** is (with − without) / with: the build time SBOMs add."
    echo "\`sbom.seconds\` is what the build itself reports for generation (scanning every"
    echo "layer, writing the CycloneDX and SPDX documents), with its share of the build in"
    echo "brackets. SBOMs are made before the archive is written (\`bundle.json\`, first"
    echo "in the archive, lists them by digest), so their time adds to the build's."
    echo "The synthetic images are bench/bundle.sh's: random data holds no packages, so"
    echo "their rows are the floor of generation, every layer decompressed and walked."
    echo "The Debian image is a real root filesystem (debootstrap \`--variant=minbase\`,"
    echo "packed by umoci), where the dpkg database, copyright files and every"
    echo "executable are read."
    echo "Reference: \`gzip -dc\` of the same layers (one after the other, output"
    echo "discarded), timed in the same runs: decompressing every layer once is the"
    echo "least any content scan does, and the part of the build no writer can avoid."
    [[ -z $DEBIAN_NOTE ]] || { echo; echo "$DEBIAN_NOTE"; }
    echo
    echo "- Command: \`bash bench/sbom.sh\` (BENCH_SIZES=\"$BENCH_SIZES\", BENCH_LAYERS=$BENCH_LAYERS, BENCH_RUNS=$BENCH_RUNS)"
    echo "- Machine: $(nproc) CPUs, $cpu, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), scratch on $fstype"
    echo "- Load average (1 min) at start / end: $LOAD_START / $LOAD_END (other work on the machine skews the numbers; rerun when it is idle)"
    echo "- Date: $(date -u +%Y-%m-%d), commit $commit, $(rustc --version 2>/dev/null || echo rustc unknown)"
    echo "- Target: SBOM generation does not dominate the build, share ≤ $(calc '%.0f' "$T_SHARE * 100") %"
    echo
    echo "| Image | Build s with SBOMs | Build s --skip-sbom | SBOM share | sbom.seconds (of build) | gzip -dc s | sbom.seconds ÷ gzip -dc | Packages | Warnings |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Context: what the image is; its layer bytes; layer bytes per second of"
    echo "\`sbom.seconds\`; the spread of the runs; CPU seconds (user + system, medians);"
    echo "peak RSS (GNU time \`%M\`, the largest of the runs)."
    echo
    echo "| Image | What | Layer bytes | Scan MiB/s | With s min–max | Without s min–max | CPU s with | CPU s without | Peak RSS MiB (with / without) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${DETAILS[@]}"
    echo
    echo "Target:"
    echo
    printf '%s\n' "${VERDICTS[@]}"
    echo "$MARK_END"
} >"$SECTION"

update_doc_section "$BENCH_DOC" "$MARK_START" "$MARK_END" "$SECTION"

# Print the section without its markers.
grep -vF -e "$MARK_START" -e "$MARK_END" "$SECTION"
