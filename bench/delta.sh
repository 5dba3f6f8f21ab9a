#!/usr/bin/env bash
# Benchmark: the size of a delta bundle against a full bundle for a realistic
# upgrade. A three-image product goes from 1.0.0 to 1.1.0 with one image
# changed in its top layer and one chart changed; 1.0.0 is built full, 1.1.0
# both full and as a delta (`airgap-bundle build --base 1.0.0`), all with
# `--skip-sbom`. The floor a delta cannot beat is what changed: the new top
# layer, compressed (incompressible data, so the bundle's zstd cannot shrink
# it either).
#
#   bash bench/delta.sh
#
# Environment (all optional):
#   BENCH_DIR          scratch folder                   (default /tmp/airgap-bench)
#   BENCH_DELTA_SCALE  layer size factor, 1 = the sizes below (default 1); the
#                      fixtures are built in memory, about 5× their size
#   BENCH_NOTE         a sentence added to the section (say, that it was a smoke run)
#   BENCH_DOC          Markdown file to update          (default docs/performance.md)
#   BENCH_KEEP         1 to keep the bundles afterwards (default: deleted)
#
# The product (`gen-fixtures release`, tests/src/bin/gen-fixtures.rs), sizes
# in MiB at scale 1, every layer gzip of random data:
#   vendor/control-plane     os base 30 + runtime 20 + app 25
#   vendor/workspace-server  os base 30 + runtime 20 + app 40 (changed in 1.1.0)
#   vendor/dashboard         os base 30 + app 10
# The os base layer is one blob shared by all three images, the runtime layer
# one blob shared by the first two. Charts: a copy of the demo chart (hello,
# 0.1.0 in 1.0.0, 0.2.0 in 1.1.0) and a second copy renamed hello-addons that
# stays 0.1.0. The image layouts are generated once per scale under
# BENCH_DIR/delta-sSCALE and reused by reruns; the charts and manifests are
# rewritten every run. The script rewrites only its own section of BENCH_DOC,
# between the `bench:delta` markers, and creates the file when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/airgap-bench}
BENCH_DELTA_SCALE=${BENCH_DELTA_SCALE:-1}
BENCH_NOTE=${BENCH_NOTE:-}
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/performance.md}
BENCH_KEEP=${BENCH_KEEP:-0}
EPOCH=1700000000
MARK_START='<!-- bench:delta:start -->'
MARK_END='<!-- bench:delta:end -->'
OLD=1.0.0
NEW=1.1.0

# Shared helpers: log, die, calc, run_timed, update_doc_section.
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

if ! [[ $BENCH_DELTA_SCALE =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk "BEGIN { exit !($BENCH_DELTA_SCALE > 0) }"; then
    die "BENCH_DELTA_SCALE must be a number above 0, not $BENCH_DELTA_SCALE"
fi

# --- 1. tools and binaries -------------------------------------------------

ensure_packages jq zstd /usr/bin/time:time

build_release_binaries

# --- helpers ---------------------------------------------------------------

mkdir -p "$BENCH_DIR"
TMP=$(mktemp -d "$BENCH_DIR/.run.XXXXXX")
FULL_OLD=$BENCH_DIR/delta-platform-$OLD.bundle
FULL_NEW=$BENCH_DIR/delta-platform-$NEW.bundle
DELTA=$BENCH_DIR/delta-platform-$NEW-delta.bundle
cleanup() {
    rm -rf "$TMP"
    [[ $BENCH_KEEP == 1 ]] || rm -f "$FULL_OLD" "$FULL_NEW" "$DELTA"
}
trap cleanup EXIT

FIX=$BENCH_DIR/delta-s$BENCH_DELTA_SCALE

# gen_release VERSION CHANGED_SEED CHART_VERSION: the release's OCI layout
# (generated unless its stamp matches), charts and manifest under $FIX/VERSION.
gen_release() {
    local v=$1 seed=$2 chart_v=$3 dir=$FIX/$1
    local stamp=$dir/images.done want="scale $BENCH_DELTA_SCALE changed-seed $seed"
    if [[ ! -f $stamp || $(<"$stamp") != "$want" ]]; then
        rm -rf "$dir/images"
        mkdir -p "$dir"
        log "generating the $v images ($want)"
        /usr/bin/time -f '%M' -o "$TMP/gen.rss" \
            "$GEN" release "$dir/images" --version "$v" --scale "$BENCH_DELTA_SCALE" --changed-seed "$seed" >&2
        log "  gen-fixtures peak RSS $(calc '%.0f' "$(tail -n 1 "$TMP/gen.rss") / 1024") MiB"
        echo "$want" >"$stamp"
    fi
    # Charts: the demo chart at CHART_VERSION, and an unchanged second chart.
    rm -rf "$dir/charts"
    mkdir -p "$dir/charts"
    cp -r "$ROOT/manifests/demo/charts/hello" "$dir/charts/hello"
    sed -i "s/^version: 0\.1\.0\$/version: $chart_v/" "$dir/charts/hello/Chart.yaml"
    grep -qx "version: $chart_v" "$dir/charts/hello/Chart.yaml" || die "could not set the chart version"
    cp -r "$ROOT/manifests/demo/charts/hello" "$dir/charts/hello-addons"
    sed -i 's/^name: hello$/name: hello-addons/' "$dir/charts/hello-addons/Chart.yaml"
    grep -qx 'name: hello-addons' "$dir/charts/hello-addons/Chart.yaml" || die "could not rename the second chart"
    cat >"$dir/platform.yaml" <<EOF
# Written by bench/delta.sh.
name: platform
version: $v
description: Delta benchmark product, release $v.
images:
  - source: oci-layout:$dir/images:vendor/control-plane:$v
  - source: oci-layout:$dir/images:vendor/workspace-server:$v
  - source: oci-layout:$dir/images:vendor/dashboard:$v
charts:
  - source: $dir/charts/hello
  - source: $dir/charts/hello-addons
EOF
}

# Config and layer blobs of every image in a layout: "digest size" lines.
layout_blobs() {
    local dir=$1 m
    jq -r '.manifests[].digest' "$dir/index.json" | while read -r m; do
        jq -r '(.config, .layers[]) | "\(.digest) \(.size)"' "$dir/blobs/sha256/${m#sha256:}"
    done | sort -u
}

# The top layer of one image of a layout: "digest size".
top_layer() {
    local dir=$1 ref=$2 m
    m=$(jq -r --arg r "$ref" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' "$dir/index.json")
    [[ -n $m ]] || die "$ref not in $dir"
    jq -r '.layers[-1] | "\(.digest) \(.size)"' "$dir/blobs/sha256/${m#sha256:}"
}

# --- 2. fixtures, key ------------------------------------------------------

KEY=$BENCH_DIR/bench
if [[ ! -f $KEY.key || ! -f $KEY.pub ]]; then
    log "generating a signing key"
    "$BUNDLE" keygen --out "$KEY" --force >/dev/null
fi

gen_release "$OLD" 1 0.1.0
gen_release "$NEW" 2 0.2.0

# What changed, from the layouts: the workspace-server's top layer is the
# only layer of 1.1.0 that 1.0.0 lacks.
read -r changed_digest changed_bytes < <(top_layer "$FIX/$NEW/images" "vendor/workspace-server:$NEW")
read -r old_top _ < <(top_layer "$FIX/$OLD/images" "vendor/workspace-server:$OLD")
[[ $changed_digest != "$old_top" ]] || die "the workspace-server top layer did not change"
layout_blobs "$FIX/$OLD/images" >"$TMP/old.blobs"
layout_blobs "$FIX/$NEW/images" >"$TMP/new.blobs"
read -r shared_count shared_bytes < <(join "$TMP/old.blobs" "$TMP/new.blobs" |
    awk '{ n++; s += $2 } END { printf "%d %d\n", n, s }')
read -r new_count new_bytes < <(join -v 2 "$TMP/old.blobs" "$TMP/new.blobs" |
    awk '{ n++; s += $2 } END { printf "%d %d\n", n, s }')
layer_total=$(awk '{ s += $2 } END { print s }' "$TMP/new.blobs")
log "1.1.0 images: $shared_count config/layer blobs ($shared_bytes bytes) as in 1.0.0, $new_count new ($new_bytes bytes)"

# --- 3. build --------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
build() {
    local label=$1 manifest=$2 out=$3
    shift 3
    rm -f "$out"
    log "build $label"
    run_timed "$label" env SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$manifest" \
        --key "$KEY.key" --out "$out" --skip-sbom --json "$@"
    [[ $(jq -r .archiveSize "$TMP/$label.out") == $(stat -c %s "$out") ]] ||
        die "$label: archiveSize is not the file's size"
}
build full-old "$FIX/$OLD/platform.yaml" "$FULL_OLD"
build full-new "$FIX/$NEW/platform.yaml" "$FULL_NEW"
build delta "$FIX/$NEW/platform.yaml" "$DELTA" --base "$FULL_OLD"

# The delta verifies on its own and names its base.
log "verify the delta"
"$INSTALL" verify "$DELTA" --trust "$KEY.pub" --json >"$TMP/verify.json" ||
    die "airgap-install verify refused the delta"
jq -e --arg v "$OLD" --arg d "$(jq -r .bundleDigest "$TMP/full-old.out")" \
    '.ok == true and .base.version == $v and .base.digest == $d' "$TMP/verify.json" >/dev/null ||
    die "verify does not report base $OLD: $(jq -c . "$TMP/verify.json")"

# --- 4. numbers and checks -------------------------------------------------

j() { jq -r "$2" "$TMP/$1.out"; }
full_old=$(j full-old .archiveSize)
full=$(j full-new .archiveSize)
delta=$(j delta .archiveSize)
full_blobs=$(j full-new .blobs)
full_stored=$(j full-new .totalSize)
delta_blobs=$(j delta .blobs)
delta_stored=$(j delta .totalSize)
left_blobs=$(j delta .blobsLeftToBase)
left_bytes=$(j delta .bytesLeftToBase)
base_blobs=$(jq -r .baseBlobs "$TMP/verify.json")

# What the delta stores plus what it leaves to the base is the full bundle.
((delta_blobs + left_blobs == full_blobs && delta_stored + left_bytes == full_stored)) ||
    die "delta ($delta_blobs blobs, $delta_stored bytes) + left to base ($left_blobs, $left_bytes) != full ($full_blobs, $full_stored)"
((base_blobs == left_blobs)) || die "verify counts $base_blobs blobs left to base, build $left_blobs"
# Every image blob the releases share is left out, and a chart blob with them
# (the unchanged hello-addons chart).
((left_bytes >= shared_bytes && left_blobs > shared_count)) ||
    die "the delta leaves $left_blobs blobs ($left_bytes bytes) to its base; the images alone share $shared_count ($shared_bytes bytes)"
((delta >= changed_bytes)) || die "the delta ($delta bytes) is smaller than the changed layer ($changed_bytes bytes)"

# What else the delta stores, from its bundle.json: "kind size" per blob.
zstd -dcq "$DELTA" | tar -xO bundle.json >"$TMP/delta.bundle.json"
jq -r --arg changed "$changed_digest" '
    [.charts[].manifest] as $cm | [.images[].digest] as $im |
    .blobs[] | select(.digest != $changed) |
    (.digest as $d |
        if any($cm[]; . == $d) then "chart-manifest"
        elif any($im[]; . == $d) then "image-manifest"
        elif .mediaType == "application/vnd.oci.image.config.v1+json" then "image-config"
        elif .mediaType == "application/vnd.cncf.helm.config.v1+json" then "chart-config"
        elif (.mediaType | test("helm\\.chart\\.content")) then "chart-archive"
        elif (.mediaType | test("image\\.layer")) then "image-layer"
        else .mediaType end) as $k |
    "\($k) \(.size)"' "$TMP/delta.bundle.json" >"$TMP/delta.other"
[[ $(jq -r '[.blobs[] | select(.digest == $c)] | length' --arg c "$changed_digest" "$TMP/delta.bundle.json") == 1 ]] ||
    die "the delta does not store the changed layer"
! grep -q '^image-layer ' "$TMP/delta.other" || die "the delta stores layers besides the changed one: $(grep '^image-layer ' "$TMP/delta.other" | tr '\n' ' ')"
# "3 image manifests 2013 B, 1 image config 698 B, ..." in a fixed order.
other_list=$(awk '{ n[$1]++; b[$1] += $2 } END {
    split("image-manifest image-config chart-manifest chart-config chart-archive", order, " ")
    for (i = 1; i <= 5; i++) { k = order[i]; if (k in n) { seen[k] = 1; out = out sprintf("%s%d %s%s %d B", out == "" ? "" : ", ", n[k], k, n[k] > 1 ? "s" : "", b[k]) } }
    for (k in n) if (!(k in seen)) out = out sprintf(", %d %s %d B", n[k], k, b[k])
    gsub("-", " ", out); print out }' "$TMP/delta.other")
log "the delta stores besides the changed layer: $other_list"

ratio_full=$(calc '%.4f' "$delta / $full")
pct_full=$(calc '%.1f' "$delta / $full * 100")
ratio_changed=$(calc '%.4f' "$delta / $changed_bytes")
overhead=$((delta - changed_bytes))
other_stored=$((delta_stored - changed_bytes))
framing=$((delta - delta_stored))
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
log "full $full bytes, delta $delta bytes ($pct_full %), changed layer $changed_bytes bytes, delta ÷ changed $ratio_changed"

row() {
    local label=$1 what=$2
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$what" "$(j "$label" .archiveSize)" \
        "$(calc '%.4f' "$(j "$label" .archiveSize) / $full")" "$(j "$label" .blobs)" "$(j "$label" .totalSize)" \
        "$(j "$label" .blobsLeftToBase)" "$(calc '%.3f' "$(tail -n 1 "$TMP/$label.times" | cut -d' ' -f1)")" \
        "$(calc '%.1f' "$(tail -n 1 "$TMP/$label.times" | cut -d' ' -f2) / 1024")"
}

# --- 5. report -------------------------------------------------------------

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi
fstype=$(df -PT "$BENCH_DIR" | awk 'NR == 2 { print $2 }')
mib() { calc '%.1f' "$1 / 1048576"; }
cmd="bash bench/delta.sh"
[[ $BENCH_DELTA_SCALE == 1 ]] || cmd="BENCH_DELTA_SCALE=$BENCH_DELTA_SCALE $cmd"

SECTION=$TMP/section.md
{
    echo "$MARK_START"
    echo "## Delta bundle size against a full bundle (\`bench/delta.sh\`)"
    echo
    echo "<!-- Generated by bench/delta.sh; rerun it rather than editing this section. -->"
    echo
    [[ -z $BENCH_NOTE ]] || { echo "$BENCH_NOTE"; echo; }
    echo "A product \`platform\` of three images and two charts goes from $OLD to $NEW with"
    echo "one image changed in its top layer and one chart changed. The images"
    echo "(\`gen-fixtures release\`, linux/amd64, gzip layers of random data, MiB at scale"
    echo "$BENCH_DELTA_SCALE): control-plane = os base $(calc '%g' "30 * $BENCH_DELTA_SCALE") + runtime $(calc '%g' "20 * $BENCH_DELTA_SCALE") + app $(calc '%g' "25 * $BENCH_DELTA_SCALE"),"
    echo "workspace-server = os base + runtime + app $(calc '%g' "40 * $BENCH_DELTA_SCALE"), dashboard = os base + app $(calc '%g' "10 * $BENCH_DELTA_SCALE"),"
    echo "the os base layer one blob in all three images and the runtime layer one"
    echo "blob in the first two. In $NEW only workspace-server's app layer is new"
    echo "(other random bytes, same size), so its config is new too; the demo chart"
    echo "\`hello\` goes from 0.1.0 to 0.2.0 and its copy \`hello-addons\` stays 0.1.0."
    echo "$OLD is built full, $NEW full and as a delta"
    echo "(\`airgap-bundle build --base $OLD\`), all with \`--skip-sbom\` and"
    echo "\`SOURCE_DATE_EPOCH=$EPOCH\`; \`airgap-install verify --json\` accepts the delta"
    echo "and reports its base. The floor a delta cannot beat is the changed top layer"
    echo "as stored (gzip of random data, which the bundle's zstd cannot shrink"
    echo "further); **delta ÷ changed layer** is the delta's overhead over that floor."
    echo
    echo "- Command: \`$cmd\` (BENCH_DELTA_SCALE=$BENCH_DELTA_SCALE)"
    echo "- Data: $NEW has $(wc -l <"$TMP/new.blobs") image config and layer blobs ($layer_total bytes), $shared_count of them ($shared_bytes bytes) the same as in $OLD; full $OLD bundle $full_old bytes"
    echo "- Machine: $(nproc) CPUs, $cpu, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), scratch on $fstype"
    echo "- Load average (1 min) at start / end: $LOAD_START / $LOAD_END (sizes do not depend on it; the build times below do)"
    echo "- Date: $(date -u +%Y-%m-%d), commit $commit, $(rustc --version 2>/dev/null || echo rustc unknown)"
    echo
    echo "| Full $NEW bytes | Delta bytes | Delta ÷ full | Blobs left to base (bytes) | Changed top layer bytes (floor) | Delta ÷ changed layer | Delta − changed layer |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    echo "| $full ($(mib "$full") MiB) | $delta ($(mib "$delta") MiB) | **$ratio_full** ($pct_full %) | $left_blobs ($left_bytes) | $changed_bytes ($(mib "$changed_bytes") MiB) | **$ratio_changed** | $overhead bytes |"
    echo
    echo "Context: each bundle's archive bytes and their share of the full $NEW"
    echo "bundle, the blobs it stores and their bytes, the blobs it leaves to its base;"
    echo "build wall time (one run, inputs not pre-warmed) and peak RSS (GNU time \`%M\`)."
    echo "The delta's overhead over the changed layer is the other $((delta_blobs - 1)) blobs it"
    echo "stores, $other_stored bytes ($other_list; a delta"
    echo "always stores every image and chart manifest, changed or not), and $framing"
    echo "bytes of archive framing (tar headers, \`bundle.json\` listing the blobs left"
    echo "to the base too, signatures, zstd frames)."
    echo
    echo "| Bundle | Archive bytes | ÷ full $NEW | Blobs stored | Blob bytes stored | Blobs left to base | Build s | Peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    row full-old "$OLD full"
    row full-new "$NEW full"
    row delta "$NEW delta (\`--base $OLD\`)"
    echo
    echo "Checks (the script fails when one does not hold):"
    echo
    echo "- delta + blobs left to base = full $NEW: $delta_blobs + $left_blobs = $full_blobs blobs, $delta_stored + $left_bytes = $full_stored bytes — met"
    echo "- the only layer the delta stores is the changed one — met"
    echo "- every image blob $NEW shares with $OLD ($shared_count, $shared_bytes bytes) and the unchanged chart are left to the base ($left_blobs blobs) — met"
    echo "- \`airgap-install verify DELTA --trust KEY.pub --json\` accepts the delta, base $OLD $(jq -r .base.digest "$TMP/verify.json" | cut -c1-19)…, $base_blobs blobs left to it — met"
    echo "$MARK_END"
} >"$SECTION"

publish_section "$SECTION"
