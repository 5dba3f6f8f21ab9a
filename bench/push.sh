#!/usr/bin/env bash
# Benchmark: push a bundle of several OCI images into a registry on loopback
# with `airgap-install push`, against `skopeo copy --preserve-digests` of the
# same images (image by image, out of the unpacked bundle) into the same kind
# of registry: a first push into an empty registry, then a repeat push into the
# now-full one.
#
#   bash bench/push.sh
#
# Environment (all optional):
#   BENCH_DIR         scratch folder                          (default /tmp/airgap-bench-push)
#   BENCH_SIZE        bytes in all images, K/M/G suffixes     (default 512M)
#   BENCH_IMAGES      images in the bundle                    (default 4)
#   BENCH_LAYERS      gzip layers per image                   (default 4)
#   BENCH_RUNS        timed runs per step (median)            (default 3)
#   BENCH_JOBS_EXTRA  extra --jobs values for the first push  (default "1 8"; "" for none)
#   BENCH_REG_DIR     where the registries keep their storage (default BENCH_DIR)
#   BENCH_DOC         Markdown file to update                 (default docs/performance.md)
#   BENCH_KEEP        1 to keep the bundle and its unpacked copy (default: deleted)
#
# Every measured run gets a registry (Debian's docker-registry, plain HTTP on a
# free loopback port) started on empty storage, so a first push really uploads
# everything; the repeat push goes to the same registry right after. Generated
# layouts are kept in BENCH_DIR so that reruns skip generation. The script
# rewrites only its own section of BENCH_DOC, between the `bench:push`
# markers, and creates the file when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/airgap-bench-push}
BENCH_SIZE=${BENCH_SIZE:-512M}
BENCH_IMAGES=${BENCH_IMAGES:-4}
BENCH_LAYERS=${BENCH_LAYERS:-4}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_JOBS_EXTRA=${BENCH_JOBS_EXTRA-"1 8"}
BENCH_REG_DIR=${BENCH_REG_DIR:-$BENCH_DIR}
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/performance.md}
BENCH_KEEP=${BENCH_KEEP:-0}
EPOCH=1700000000
JOBS_DEFAULT=4 # airgap-install push's default --jobs
MARK_START='<!-- bench:push:start -->'
MARK_END='<!-- bench:push:end -->'

# Targets (from the spec).
T_FIRST=0.6  # first push  <= 0.6 x skopeo's total
T_REPEAT=0.2 # repeat push <= 0.2 x skopeo's repeat
T_RSS=64     # peak RSS of airgap-install push <= 64 MiB

# Shared helpers: log, die, warm, calc, maxcol, mincol, size_bytes, run_timed, median,
# sum_last, gen_layout, start_registry, stop_registry, measure, regmed.
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

# --- 1. tools and binaries -------------------------------------------------

ensure_packages zstd tar jq skopeo docker-registry /usr/bin/time:time

build_release_binaries

# --- helpers ---------------------------------------------------------------

mkdir -p "$BENCH_DIR" "$BENCH_REG_DIR"
TMP=$(mktemp -d "$BENCH_DIR/.run.XXXXXX")
cleanup() {
    stop_registry
    rm -rf "$TMP"
}
trap cleanup EXIT

# check_registry WHO: every image's tag in the registry must name exactly the
# bundle's manifest bytes.
check_registry() {
    local name tag digest got
    while IFS=$'\t' read -r name tag digest; do
        got=$(skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$REG_PORT/$name:$tag" | sha256sum | cut -d' ' -f1)
        [[ sha256:$got == "$digest" ]] ||
            die "$1: $name:$tag is sha256:$got in the registry, the bundle has $digest"
    done <"$TMP/images.tsv"
}

# --- 2. fixtures, key, bundle ----------------------------------------------

bytes=$(size_bytes "$BENCH_SIZE")
((BENCH_IMAGES >= 1 && BENCH_LAYERS >= 1)) || die "BENCH_IMAGES and BENCH_LAYERS must be at least 1"
per_image=$((bytes / BENCH_IMAGES))
set_name=set-$BENCH_SIZE-${BENCH_IMAGES}x$BENCH_LAYERS
SET_DIR=$BENCH_DIR/$set_name

KEY=$BENCH_DIR/bench
if [[ ! -f $KEY.key || ! -f $KEY.pub ]]; then
    log "generating a signing key"
    "$BUNDLE" keygen --out "$KEY" --force >/dev/null
fi

mkdir -p "$SET_DIR"
MANIFEST=$SET_DIR/bundle.yaml
{
    echo "# Written by bench/push.sh."
    echo "name: bench-push"
    echo "version: 1.0.0"
    echo "description: Benchmark bundle, $BENCH_IMAGES images of $BENCH_LAYERS gzip layers ($BENCH_SIZE of random data in all)."
    echo "images:"
} >"$MANIFEST"
for ((i = 1; i <= BENCH_IMAGES; i++)); do
    ref=bench/img$i:1.0
    gen_layout "$SET_DIR/img$i" "$per_image" "$BENCH_LAYERS" "$i" "$ref"
    echo "  - source: oci-layout:img$i:$ref" >>"$MANIFEST"
done

B=$BENCH_DIR/bench-push.bundle
X=$BENCH_DIR/bench-push.oci
log "building the bundle"
rm -f "$B"
SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$MANIFEST" --key "$KEY.key" --out "$B" --json >"$TMP/build.json"
archive_size=$(stat -c %s "$B")
log "unpacking it for skopeo (zstd -dc | tar -x)"
rm -rf "$X"
mkdir -p "$X"
zstd -dc "$B" | tar -x -C "$X"
jq -r '.images[] | [.name, .tag, .digest] | @tsv' "$X/bundle.json" >"$TMP/images.tsv"
jq -r '.images[].reference' "$X/bundle.json" >"$TMP/refs.txt"
n_images=$(wc -l <"$TMP/images.tsv")
((n_images == BENCH_IMAGES)) || die "the bundle has $n_images images, expected $BENCH_IMAGES"
# Config and layer blobs: what a first push must upload.
n_blobs=$((BENCH_IMAGES * (BENCH_LAYERS + 1)))
mapfile -t x_files < <(find "$X" -type f)
layer_bytes=$(jq '[.blobs[] | .size] | add' "$X/bundle.json")
# Sizes of the layer blobs, to tell monolithic from chunked uploads.
mapfile -t layer_sizes < <(
    for d in $(jq -r '.images[].digest' "$X/bundle.json"); do
        jq -r '.layers[].size' "$X/blobs/sha256/${d#sha256:}"
    done | sort -n
)

# --- 3. measure ------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

skopeo_all() { # LABEL: one skopeo copy per image, each timed, folded into one line
    local ref
    warm "${x_files[@]}"
    while read -r ref; do
        run_timed "$1_img" skopeo copy --quiet --preserve-digests --dest-tls-verify=false \
            "oci:$X:$ref" "docker://127.0.0.1:$REG_PORT/$ref"
    done <"$TMP/refs.txt"
    sum_last "$1_img" "$BENCH_IMAGES" "$1"
}

airgap_once() { # LABEL JOBS
    warm "$B"
    run_timed "$1" "$INSTALL" push "$B" --trust "$KEY.pub" --registry "127.0.0.1:$REG_PORT" \
        --plain-http --relocation-map "$TMP/relocation-map.json" --jobs "$2" --json
}

for ((i = 1; i <= BENCH_RUNS; i++)); do
    log "run $i: airgap-install push (--jobs $JOBS_DEFAULT), first then repeat"
    sync
    start_registry
    measure ag_first airgap_once ag_first "$JOBS_DEFAULT"
    check_registry "airgap-install push"
    up=$(jq -r .blobsUploaded "$TMP/ag_first.out")
    ((up == n_blobs)) || die "first push uploaded $up blobs, expected $n_blobs"
    measure ag_repeat airgap_once ag_repeat "$JOBS_DEFAULT"
    up=$(jq -r .blobsUploaded "$TMP/ag_repeat.out")
    ((up == 0)) || die "repeat push uploaded $up blobs"
    [[ $(jq -r '[.relocation.images[].status] | unique | join(",")' "$TMP/ag_repeat.out") == unchanged ]] ||
        die "repeat push: not every image is unchanged"
    check_registry "airgap-install push (repeat)"
    stop_registry

    log "run $i: skopeo copy --preserve-digests x $BENCH_IMAGES, first then repeat"
    sync
    start_registry
    measure sk_first skopeo_all sk_first
    check_registry "skopeo copy"
    measure sk_repeat skopeo_all sk_repeat
    check_registry "skopeo copy (repeat)"
    stop_registry

    for j in $BENCH_JOBS_EXTRA; do
        [[ $j != "$JOBS_DEFAULT" ]] || continue
        log "run $i: airgap-install push --jobs $j, first"
        sync
        start_registry
        measure "ag_first_j$j" airgap_once "ag_first_j$j" "$j"
        check_registry "airgap-install push --jobs $j"
        stop_registry
    done
done

LOAD_END=$(cut -d' ' -f1 /proc/loadavg)

# --- 4. results ------------------------------------------------------------

ROWS=()
DETAILS=()
VERDICTS=()
t_skf=$(median sk_first 1)
t_skr=$(median sk_repeat 1)
r_sk=$(calc '%.1f' "$(maxcol sk_first_img 2) / 1024")
ratio_str() { calc '%.2f' "$1 / $2"; }

t_agf=$(median ag_first 1)
t_agr=$(median ag_repeat 1)
x_first=$(ratio_str "$t_agf" "$t_skf")
x_repeat=$(ratio_str "$t_agr" "$t_skr")
r_agf=$(calc '%.1f' "$(maxcol ag_first 2) / 1024")
r_agr=$(calc '%.1f' "$(maxcol ag_repeat 2) / 1024")
mibps() { calc '%.0f' "$layer_bytes / 1048576 / $1"; }

ROWS+=("| First push, empty registry (--jobs $JOBS_DEFAULT) | $(calc '%.3f' "$t_agf") | $(calc '%.3f' "$t_skf") | **${x_first}×** | ≤ ${T_FIRST}× | $r_agf / $r_sk |")
ROWS+=("| Repeat push, full registry (--jobs $JOBS_DEFAULT) | $(calc '%.3f' "$t_agr") | $(calc '%.3f' "$t_skr") | **${x_repeat}×** | ≤ ${T_REPEAT}× | $r_agr / $r_sk |")
rss_all=("$r_agf" "$r_agr")
for j in $BENCH_JOBS_EXTRA; do
    [[ $j != "$JOBS_DEFAULT" ]] || continue
    t=$(median "ag_first_j$j" 1)
    r=$(calc '%.1f' "$(maxcol "ag_first_j$j" 2) / 1024")
    rss_all+=("$r")
    ROWS+=("| First push, --jobs $j (extra) | $(calc '%.3f' "$t") | $(calc '%.3f' "$t_skf") | $(ratio_str "$t" "$t_skf")× | — | $r / $r_sk |")
done

detail() { # LABEL TEXT
    local l=$1
    DETAILS+=("| $2 | $(calc '%.3f' "$(mincol "$l" 1)")–$(calc '%.3f' "$(maxcol "$l" 1)") | $(median "$l" 3) u + $(median "$l" 4) s | $(regmed "$l" 1) | $(regmed "$l" 2) / $(regmed "$l" 3) / $(regmed "$l" 4) / $(regmed "$l" 5) / $(regmed "$l" 6) |")
}
detail ag_first "airgap-install push, first (--jobs $JOBS_DEFAULT, $(mibps "$t_agf") MiB/s)"
for j in $BENCH_JOBS_EXTRA; do
    [[ $j != "$JOBS_DEFAULT" ]] || continue
    detail "ag_first_j$j" "airgap-install push, first (--jobs $j, $(mibps "$(median "ag_first_j$j" 1)") MiB/s)"
done
detail sk_first "skopeo copy ×$BENCH_IMAGES, first ($(mibps "$t_skf") MiB/s)"
detail ag_repeat "airgap-install push, repeat"
detail sk_repeat "skopeo copy ×$BENCH_IMAGES, repeat"

v() { VERDICTS+=("- $1 — $2"); }
if awk "BEGIN { exit !($x_first <= $T_FIRST) }"; then v "first push ${x_first}× skopeo ≤ ${T_FIRST}×" met; else v "first push ${x_first}× skopeo > ${T_FIRST}×" "**missed**"; fi
if awk "BEGIN { exit !($x_repeat <= $T_REPEAT) }"; then v "repeat push ${x_repeat}× skopeo ≤ ${T_REPEAT}×" met; else v "repeat push ${x_repeat}× skopeo > ${T_REPEAT}×" "**missed**"; fi
r_max=$(printf '%s\n' "${rss_all[@]}" | sort -g | tail -n 1)
if awk "BEGIN { exit !($r_max <= $T_RSS) }"; then v "peak RSS of airgap-install push ${r_max} MiB (largest of all runs) ≤ $T_RSS MiB" met; else v "peak RSS of airgap-install push ${r_max} MiB > $T_RSS MiB" "**missed**"; fi

log "first: airgap $t_agf s vs skopeo $t_skf s (${x_first}x); repeat: airgap $t_agr s vs skopeo $t_skr s (${x_repeat}x); RSS $r_max MiB"

# --- 5. report -------------------------------------------------------------

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi
fstype=$(df -PT "$BENCH_REG_DIR" | awk 'NR == 2 { print $2 }')
reg_version=$(docker-registry --version 2>/dev/null | awk '{ print $NF }')
sk_version=$(skopeo --version | awk '{ print $NF }')
mono=0 chunked=0
for s in "${layer_sizes[@]}"; do
    if ((s <= 32 << 20)); then mono=$((mono + 1)); else chunked=$((chunked + 1)); fi
done

SECTION=$TMP/section.md
{
    echo "$MARK_START"
    echo "## Push to a registry (\`bench/push.sh\`)"
    echo
    echo "<!-- Generated by bench/push.sh; rerun it rather than editing this section. -->"
    echo
    echo "One bundle of $BENCH_IMAGES OCI images, each of $BENCH_LAYERS gzip layers of random data"
    echo "($BENCH_SIZE in all), pushed into Debian's \`docker-registry\` $reg_version on loopback (plain"
    echo "HTTP, filesystem storage on $fstype). \`airgap-install push B --trust K.pub --registry"
    echo "127.0.0.1:PORT --plain-http --json\` is compared with skopeo $sk_version pushing the same"
    echo "images from the unpacked bundle (\`zstd -dc B | tar -x\`), one"
    echo "\`skopeo copy --preserve-digests --dest-tls-verify=false oci:DIR:REF docker://127.0.0.1:PORT/REF\`"
    echo "per image, its time the sum of the $BENCH_IMAGES copies. Each first push goes into a"
    echo "registry started on empty storage; the repeat push is the same command again"
    echo "right after, into the now-full registry. After every push the script checks that"
    echo "each tag in the registry names the bundle's manifest digest"
    echo "(\`skopeo inspect --raw | sha256sum\`). Inputs are pulled into the page cache before"
    echo "every timed run; times are the median of $BENCH_RUNS runs, peak RSS the largest of"
    echo "them (GNU time \`%M\`; for skopeo the largest single copy)."
    echo
    echo "- Command: \`bash bench/push.sh\` (BENCH_SIZE=$BENCH_SIZE, BENCH_IMAGES=$BENCH_IMAGES, BENCH_LAYERS=$BENCH_LAYERS, BENCH_RUNS=$BENCH_RUNS, BENCH_JOBS_EXTRA=\"$BENCH_JOBS_EXTRA\")"
    echo "- Data: $n_blobs config and layer blobs, $layer_bytes bytes of blobs in all, bundle $archive_size bytes; layer blobs $(printf '%s\n' "${layer_sizes[@]}" | head -n 1)–$(printf '%s\n' "${layer_sizes[@]}" | tail -n 1) bytes: $mono at most 32 MiB (one PUT), $chunked larger (16 MiB PATCH chunks)"
    echo "- Machine: $(nproc) CPUs, $cpu, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); client and registry share the CPUs"
    echo "- Load average (1 min) at start / end: $LOAD_START / $LOAD_END (other work on the machine skews the numbers; rerun when it is idle)"
    echo "- Date: $(date -u +%Y-%m-%d), commit $commit, $(rustc --version 2>/dev/null || echo rustc unknown)"
    echo "- Targets: first push ≤ ${T_FIRST}× skopeo's total, repeat push ≤ ${T_REPEAT}× skopeo's repeat, peak RSS of \`airgap-install push\` ≤ ${T_RSS} MiB"
    echo
    echo "| Step | airgap-install push s | skopeo copy s (sum of $BENCH_IMAGES) | airgap / skopeo | Target | Peak RSS MiB (airgap / skopeo) |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Context: the spread of the runs; client CPU seconds (user + system, medians; for"
    echo "skopeo summed over the copies); the registry's CPU seconds over the same step"
    echo "(from /proc, medians); the HTTP requests the registry logged for the step"
    echo "(medians)."
    echo
    echo "| Step | Wall s min–max | Client CPU s | Registry CPU s | Requests HEAD / GET / POST / PATCH / PUT |"
    echo "|---|---:|---:|---:|---:|"
    end_section "Targets:"
} >"$SECTION"

if [[ $BENCH_KEEP != 1 ]]; then
    rm -rf "$B" "$X"
fi

publish_section "$SECTION"
