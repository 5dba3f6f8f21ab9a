#!/usr/bin/env bash
# Benchmark: pull several OCI images from a registry on loopback and bundle them
# with `airgap-bundle build` (the bundler's registry pull path), against what a
# release engineer does today before bundling: one `skopeo copy` per image from
# the registry into a fresh OCI layout. A cold build into an empty blob cache,
# a warm rebuild from that cache with the registry still up, and a rebuild with
# the registry stopped, which must succeed.
#
#   bash bench/pull.sh
#
# Environment (all optional):
#   BENCH_DIR         scratch folder                          (default /tmp/airgap-bench-pull)
#   BENCH_SIZE        bytes in all images, K/M/G suffixes     (default 512M)
#   BENCH_IMAGES      images in the bundle                    (default 4)
#   BENCH_LAYERS      gzip layers per image                   (default 4)
#   BENCH_RUNS        timed runs per step (median)            (default 3)
#   BENCH_JOBS_EXTRA  extra --jobs values for the cold build  (default "1 8"; "" for none)
#   BENCH_REG_DIR     where the registry keeps its storage    (default BENCH_DIR)
#   BENCH_DOC         Markdown file to update                 (default docs/performance.md)
#   BENCH_KEEP        1 to keep the last bundle, blob cache and skopeo copy (default: deleted)
#
# The images are generated as bench/push.sh generates them (the same
# set-SIZE-IMAGESxLAYERS/imgN layouts: BENCH_DIR=/tmp/airgap-bench-push reuses
# push's) and loaded with `skopeo copy --all --preserve-digests` into one
# registry (Debian's docker-registry, plain HTTP on a free loopback port) that
# serves every run. Each cold build gets a new, empty --cache-dir and each
# skopeo reference a new, empty destination folder. The rebuild without a
# registry builds from a lock file written by `airgap-bundle lock` before the
# registry is stopped. Generated layouts are kept in BENCH_DIR so that reruns
# skip generation. The script rewrites only its own section of BENCH_DOC,
# between the `bench:pull` markers, and creates the file when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/airgap-bench-pull}
BENCH_SIZE=${BENCH_SIZE:-512M}
BENCH_IMAGES=${BENCH_IMAGES:-4}
BENCH_LAYERS=${BENCH_LAYERS:-4}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_JOBS_EXTRA=${BENCH_JOBS_EXTRA-"1 8"}
BENCH_REG_DIR=${BENCH_REG_DIR:-$BENCH_DIR}
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/performance.md}
BENCH_KEEP=${BENCH_KEEP:-0}
EPOCH=1700000000
JOBS_DEFAULT=4 # airgap-bundle build's default --jobs
MARK_START='<!-- bench:pull:start -->'
MARK_END='<!-- bench:pull:end -->'

# Targets.
T_COLD=1.0 # cold pull + build <= 1.0 x skopeo's copies
T_RSS=64   # peak RSS of the cold build <= 64 MiB (the build target of bench/bundle.sh)

# Shared helpers: log, die, warm, calc, maxcol, mincol, size_bytes, run_timed, median,
# sum_last, gen_layout, start_registry, stop_registry, measure, regmed.
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

# --- 1. tools and binaries -------------------------------------------------

ensure_packages jq skopeo docker-registry /usr/bin/time:time

build_release_binaries

# --- helpers ---------------------------------------------------------------

mkdir -p "$BENCH_DIR" "$BENCH_REG_DIR"
TMP=$(mktemp -d "$BENCH_DIR/.run.XXXXXX")
B=$BENCH_DIR/bench-pull.bundle
CACHE=$BENCH_DIR/bench-pull.cache # airgap-bundle's blob cache
SK_DIR=$BENCH_DIR/bench-pull.oci  # skopeo's destination
cleanup() {
    stop_registry
    rm -rf "$TMP"
    [[ $BENCH_KEEP == 1 ]] || rm -rf "$B" "$CACHE" "$SK_DIR"
}
trap cleanup EXIT

# warm_inputs: what a pull reads (the registry's storage, the blob cache) into
# the page cache.
warm_inputs() {
    local files
    mapfile -t files < <(find "$CACHE" ${REG_DIR:+"$REG_DIR/data"} -type f 2>/dev/null)
    ((${#files[@]} == 0)) || warm "${files[@]}"
}

# ag_build LABEL JOBS [ARG...]: one timed `airgap-bundle build` of the manifest,
# pulling through $CACHE, into $B.
ag_build() {
    local label=$1 jobs=$2
    shift 2
    rm -f "$B"
    warm_inputs
    run_timed "$label" env SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$MANIFEST" --key "$KEY.key" \
        --out "$B" --json --cache-dir "$CACHE" --jobs "$jobs" "$@"
}

# check_build LABEL DOWNLOADED: the last build of LABEL downloaded DOWNLOADED
# blobs, and its bundle holds every image under its name with the registry's
# manifest digest. Prints the bundle digest.
check_build() {
    local got
    got=$(jq -r .pull.blobsDownloaded "$TMP/$1.out")
    [[ $got == "$2" ]] || die "$1: downloaded $got blobs, expected $2"
    got=$("$BUNDLE" inspect "$B" --json | jq -r '.images[] | [.reference, .digest] | @tsv')
    [[ $got == "$(cat "$TMP/images.tsv")" ]] ||
        die "$1: the bundle's images differ from the registry's:"$'\n'"$got"
    jq -r .bundleDigest "$TMP/$1.out"
}

# skopeo_all LABEL: one skopeo copy per image from the registry into $SK_DIR,
# each timed, folded into one line.
skopeo_all() {
    local ref
    warm_inputs
    while read -r ref; do
        run_timed "$1_img" skopeo copy --quiet --src-tls-verify=false \
            "docker://$ADDR/$ref" "oci:$SK_DIR:$ref"
    done <"$TMP/refs.txt"
    sum_last "$1_img" "$BENCH_IMAGES" "$1"
}

# check_skopeo WHO: every image in $SK_DIR has the registry's manifest digest
# (skopeo did not convert anything).
check_skopeo() {
    local got
    got=$(jq -r '.manifests[] | [.annotations["org.opencontainers.image.ref.name"], .digest] | @tsv' \
        "$SK_DIR/index.json" | sort)
    [[ $got == "$(sort "$TMP/images.tsv")" ]] ||
        die "$1: the copied images differ from the registry's:"$'\n'"$got"
}

# --- 2. fixtures, key, registry, manifest ----------------------------------

bytes=$(size_bytes "$BENCH_SIZE")
((BENCH_IMAGES >= 1 && BENCH_LAYERS >= 1)) || die "BENCH_IMAGES and BENCH_LAYERS must be at least 1"
((BENCH_RUNS >= 1)) || die "BENCH_RUNS must be at least 1"
per_image=$((bytes / BENCH_IMAGES))
set_name=set-$BENCH_SIZE-${BENCH_IMAGES}x$BENCH_LAYERS
SET_DIR=$BENCH_DIR/$set_name

KEY=$BENCH_DIR/bench
if [[ ! -f $KEY.key || ! -f $KEY.pub ]]; then
    log "generating a signing key"
    "$BUNDLE" keygen --out "$KEY" --force >/dev/null
fi

: >"$TMP/refs.txt"
: >"$TMP/images.tsv"
for ((i = 1; i <= BENCH_IMAGES; i++)); do
    ref=bench/img$i:1.0
    gen_layout "$SET_DIR/img$i" "$per_image" "$BENCH_LAYERS" "$i" "$ref"
    echo "$ref" >>"$TMP/refs.txt"
    digest=$(jq -r --arg r "$ref" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' \
        "$SET_DIR/img$i/index.json")
    [[ $digest == sha256:* ]] || die "$SET_DIR/img$i: no image $ref"
    printf '%s\t%s\n' "$ref" "$digest" >>"$TMP/images.tsv"
done

start_registry
ADDR=127.0.0.1:$REG_PORT
log "loading $BENCH_IMAGES images into the registry at $ADDR (skopeo copy --all --preserve-digests)"
for ((i = 1; i <= BENCH_IMAGES; i++)); do
    ref=bench/img$i:1.0
    skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false \
        "oci:$SET_DIR/img$i:$ref" "docker://$ADDR/$ref" >&2
done
while IFS=$'\t' read -r ref digest; do
    got=$(skopeo inspect --raw --tls-verify=false "docker://$ADDR/$ref" | sha256sum | cut -d' ' -f1)
    [[ sha256:$got == "$digest" ]] || die "$ref is sha256:$got in the registry, the layout has $digest"
done <"$TMP/images.tsv"

# The manifest names the registry's port, which changes with every run of the
# script: it lives in TMP, with the lock file (not at the default NAME.lock.json,
# so that the cold and warm builds resolve the tags).
MANIFEST=$TMP/bench-pull.yaml
LOCK=$TMP/pinned.lock.json
{
    echo "# Written by bench/pull.sh."
    echo "name: bench-pull"
    echo "version: 1.0.0"
    echo "description: Benchmark bundle, $BENCH_IMAGES registry images of $BENCH_LAYERS gzip layers ($BENCH_SIZE of random data in all)."
    echo "registries:"
    echo "  - host: $ADDR"
    echo "    plainHttp: true"
    echo "images:"
    while read -r ref; do
        echo "  - source: $ADDR/$ref"
    done <"$TMP/refs.txt"
} >"$MANIFEST"

# What a cold build downloads: each image's manifest, config and layers.
n_cold=$((BENCH_IMAGES * (BENCH_LAYERS + 2)))
# What a warm rebuild downloads: each tag's manifest, asked of the registry again.
n_warm=$BENCH_IMAGES

# --- 3. measure ------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

for ((i = 1; i <= BENCH_RUNS; i++)); do
    log "run $i: airgap-bundle build (--jobs $JOBS_DEFAULT), cold (empty cache) then warm (same cache)"
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    sync
    measure ag_cold ag_build ag_cold "$JOBS_DEFAULT"
    d_cold=$(check_build ag_cold "$n_cold")
    if ((i == 1)); then
        "$INSTALL" verify "$B" --trust "$KEY.pub" --json >"$TMP/verify.json" ||
            die "airgap-install verify refuses the pulled bundle"
        archive_size=$(jq -r .archiveSize "$TMP/ag_cold.out")
        total_size=$(jq -r .totalSize "$TMP/ag_cold.out")
        n_blobs=$(jq -r .blobs "$TMP/ag_cold.out")
        pulled_bytes=$(jq -r .pull.bytesDownloaded "$TMP/ag_cold.out")
    fi
    sync
    measure ag_warm ag_build ag_warm "$JOBS_DEFAULT"
    d_warm=$(check_build ag_warm "$n_warm")
    [[ $d_warm == "$d_cold" ]] || die "warm rebuild: bundle digest $d_warm, the cold build made $d_cold"

    log "run $i: skopeo copy x $BENCH_IMAGES into a fresh folder, then again into the same folder"
    rm -rf "$SK_DIR"
    sync
    measure sk_cold skopeo_all sk_cold
    check_skopeo "skopeo copy"
    sync
    measure sk_repeat skopeo_all sk_repeat
    check_skopeo "skopeo copy (repeat)"

    for j in $BENCH_JOBS_EXTRA; do
        [[ $j != "$JOBS_DEFAULT" ]] || continue
        log "run $i: airgap-bundle build --jobs $j, cold"
        rm -rf "$CACHE"
        mkdir -p "$CACHE"
        sync
        measure "ag_cold_j$j" ag_build "ag_cold_j$j" "$j"
        d=$(check_build "ag_cold_j$j" "$n_cold")
        [[ $d == "$d_cold" ]] || die "--jobs $j: bundle digest $d, expected $d_cold"
    done
done

log "pinning the images (airgap-bundle lock), then stopping the registry"
"$BUNDLE" lock "$MANIFEST" --out "$LOCK" --cache-dir "$CACHE" --json >"$TMP/lock.out" 2>"$TMP/lock.err" ||
    { cat "$TMP/lock.err" >&2; die "airgap-bundle lock failed"; }
stop_registry
! port_open "$REG_PORT" || die "something still answers on $ADDR"
for ((i = 1; i <= BENCH_RUNS; i++)); do
    log "run $i: airgap-bundle build --lock --locked, registry stopped"
    sync
    ag_build ag_offline "$JOBS_DEFAULT" --lock "$LOCK" --locked
    d=$(check_build ag_offline 0)
    [[ $d == "$d_cold" ]] || die "registry-free rebuild: bundle digest $d, expected $d_cold"
done
log "registry-free rebuild: ok"

LOAD_END=$(cut -d' ' -f1 /proc/loadavg)

# --- 4. results ------------------------------------------------------------

ROWS=()
DETAILS=()
VERDICTS=()
ratio_str() { calc '%.2f' "$1 / $2"; }
mibps() { calc '%.0f' "$total_size / 1048576 / $1"; }
rss() { calc '%.1f' "$(maxcol "$1" 2) / 1024"; }

t_skc=$(median sk_cold 1)
t_skr=$(median sk_repeat 1)
t_agc=$(median ag_cold 1)
t_agw=$(median ag_warm 1)
t_off=$(median ag_offline 1)
x_cold=$(ratio_str "$t_agc" "$t_skc")
r_sk=$(rss sk_cold_img)
r_agc=$(rss ag_cold)
t_pull=$(calc '%.3f' "$t_agc - $t_agw")

row() { # TEXT LABEL RATIO TARGET
    ROWS+=("| $1 | $(calc '%.3f' "$(median "$2" 1)") | $(calc '%.3f' "$t_skc") | $3 | $4 | $(rss "$2") / $r_sk |")
}
row "Cold pull + build, empty cache (--jobs $JOBS_DEFAULT)" ag_cold "**${x_cold}×**" "≤ ${T_COLD}×"
row "Warm rebuild from the cache, registry up" ag_warm "$(ratio_str "$t_agw" "$t_skc")×" —
row "Rebuild from the cache, registry stopped (\`--lock L --locked\`)" ag_offline "$(ratio_str "$t_off" "$t_skc")×" —
for j in $BENCH_JOBS_EXTRA; do
    [[ $j != "$JOBS_DEFAULT" ]] || continue
    row "Cold pull + build, --jobs $j (extra)" "ag_cold_j$j" "$(ratio_str "$(median "ag_cold_j$j" 1)" "$t_skc")×" —
done

detail() { # LABEL TEXT [REGISTRY]
    local l=$1 reg="— | —"
    if [[ -f $TMP/$l.reg ]]; then
        reg="$(regmed "$l" 1) | $(regmed "$l" 2) / $(regmed "$l" 3) / $(regmed "$l" 4) / $(regmed "$l" 5) / $(regmed "$l" 6)"
    fi
    DETAILS+=("| $2 | $(calc '%.3f' "$(mincol "$l" 1)")–$(calc '%.3f' "$(maxcol "$l" 1)") | $(median "$l" 3) u + $(median "$l" 4) s | $reg |")
}
detail ag_cold "airgap-bundle build, cold (--jobs $JOBS_DEFAULT, $(mibps "$t_agc") MiB/s)"
for j in $BENCH_JOBS_EXTRA; do
    [[ $j != "$JOBS_DEFAULT" ]] || continue
    detail "ag_cold_j$j" "airgap-bundle build, cold (--jobs $j, $(mibps "$(median "ag_cold_j$j" 1)") MiB/s)"
done
detail sk_cold "skopeo copy ×$BENCH_IMAGES, fresh folder ($(mibps "$t_skc") MiB/s)"
detail ag_warm "airgap-bundle build, warm"
detail ag_offline "airgap-bundle build, registry stopped"
detail sk_repeat "skopeo copy ×$BENCH_IMAGES, again into the same folder ($(calc '%.3f' "$t_skr") s)"

v() { VERDICTS+=("- $1 — $2"); }
if awk "BEGIN { exit !($x_cold <= $T_COLD) }"; then v "cold pull + build ${x_cold}× skopeo ≤ ${T_COLD}×" met; else v "cold pull + build ${x_cold}× skopeo > ${T_COLD}×" "**missed**"; fi
if awk "BEGIN { exit !($r_agc <= $T_RSS) }"; then v "peak RSS of the cold build ${r_agc} MiB ≤ $T_RSS MiB" met; else v "peak RSS of the cold build ${r_agc} MiB > $T_RSS MiB" "**missed**"; fi
v "registry-free rebuild from the cache and lock file succeeds, same bundle digest" met

log "cold: airgap $t_agc s vs skopeo $t_skc s (${x_cold}x); warm: $t_agw s; registry stopped: $t_off s; RSS $r_agc MiB"

# --- 5. report -------------------------------------------------------------

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi
fstype=$(df -PT "$BENCH_DIR" | awk 'NR == 2 { print $2 }')
reg_fstype=$(df -PT "$BENCH_REG_DIR" | awk 'NR == 2 { print $2 }')
reg_version=$(docker-registry --version 2>/dev/null | awk '{ print $NF }')
sk_version=$(skopeo --version | awk '{ print $NF }')

SECTION=$TMP/section.md
{
    echo "$MARK_START"
    echo "## Pull from a registry and build (\`bench/pull.sh\`)"
    echo
    echo "<!-- Generated by bench/pull.sh; rerun it rather than editing this section. -->"
    echo
    echo "$BENCH_IMAGES OCI images, each of $BENCH_LAYERS gzip layers of random data ($BENCH_SIZE in all,"
    echo "generated as for \`bench/push.sh\`), loaded with \`skopeo copy --all --preserve-digests\` into"
    echo "Debian's \`docker-registry\` $reg_version on loopback (plain HTTP, storage on $reg_fstype). A manifest"
    echo "lists them by registry reference (\`127.0.0.1:PORT/bench/imgN:1.0\`, with"
    echo "\`registries: [{host: 127.0.0.1:PORT, plainHttp: true}]\`), and"
    echo "\`airgap-bundle build M --key K --out B --json --cache-dir C\` pulls them and writes the"
    echo "signed bundle. The reference is what a release engineer does today before bundling:"
    echo "skopeo $sk_version copying each image, one after another, into a fresh folder"
    echo "(\`skopeo copy --src-tls-verify=false docker://127.0.0.1:PORT/REF oci:DIR:REF\`), its"
    echo "time the sum of the $BENCH_IMAGES copies. The bundler does more than skopeo here: besides"
    echo "pulling into its cache it writes the compressed, signed bundle (and fsyncs both)."
    echo "Each cold build starts from an empty \`--cache-dir\`; the warm rebuild is the same"
    echo "command again with the same cache (the registry still answers the tags); the last"
    echo "rebuild uses a lock file from \`airgap-bundle lock\` (\`--lock L --locked\`) with the"
    echo "registry stopped. Every build must give the same bundle digest, with each image"
    echo "under the registry's manifest digest; skopeo's copies must keep those digests too."
    echo "The registry's storage and the cache are pulled into the page cache before every"
    echo "timed run; times are the median of $BENCH_RUNS runs, peak RSS the largest of them"
    echo "(GNU time \`%M\`; for skopeo the largest single copy)."
    echo
    echo "- Command: \`BENCH_SIZE=$BENCH_SIZE BENCH_IMAGES=$BENCH_IMAGES BENCH_LAYERS=$BENCH_LAYERS BENCH_RUNS=$BENCH_RUNS BENCH_JOBS_EXTRA=\"$BENCH_JOBS_EXTRA\" bash bench/pull.sh\` (on an idle machine)"
    echo "- Data: $n_blobs blobs (manifests, configs, layers), $total_size bytes in all, $pulled_bytes bytes pulled by a cold build, bundle $archive_size bytes"
    echo "- Pull share of the cold build, estimated as cold − warm (medians): $t_pull s of $(calc '%.3f' "$t_agc") s"
    echo "- Machine: $(nproc) CPUs, $cpu, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), scratch on $fstype; client and registry share the CPUs"
    echo "- Load average (1 min) at start / end: $LOAD_START / $LOAD_END (other work on the machine skews the numbers; rerun when it is idle)"
    echo "- Date: $(date -u +%Y-%m-%d), commit $commit, $(rustc --version 2>/dev/null || echo rustc unknown)"
    echo "- Targets: cold pull + build ≤ ${T_COLD}× skopeo's copies, peak RSS of the cold build ≤ ${T_RSS} MiB (the build target of \`bench/bundle.sh\`), rebuild with the registry stopped succeeds"
    echo
    echo "| Step | airgap-bundle build s | skopeo copy s (sum of $BENCH_IMAGES, fresh folder) | airgap / skopeo | Target | Peak RSS MiB (airgap / skopeo) |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Context: the spread of the runs; client CPU seconds (user + system, medians; for"
    echo "skopeo summed over the copies); the registry's CPU seconds over the same step"
    echo "(from /proc, medians); the HTTP requests the registry logged for the step"
    echo "(medians); skopeo copying again into its filled folder, its nearest thing to a"
    echo "warm rebuild."
    echo
    echo "| Step | Wall s min–max | Client CPU s | Registry CPU s | Requests HEAD / GET / POST / PATCH / PUT |"
    echo "|---|---:|---:|---:|---:|"
    end_section "Targets:"
} >"$SECTION"

publish_section "$SECTION"
