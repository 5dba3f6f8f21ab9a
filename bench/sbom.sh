#!/usr/bin/env bash
# Benchmark: the share of build time that SBOM generation takes. The same
# manifest is built with `airgap-bundle build` (SBOMs generated, the default;
# cold, with an empty cache folder), again with the layer scans a cold build
# stored (warm), and with `--skip-sbom`, in rotating order, on the same
# machine and inputs; the share is (with - without) / with, the build time
# SBOMs add (and (warm - without) / warm with the scans cached). Beside it, the
# `sbom.seconds` the build itself reports (`build --json`), which covers
# scanning the layers and writing the documents.
#
# Each image is built from up to three sources: its local OCI layout; a registry on
# plain loopback; and a registry behind a rate-limited link (BENCH_LINK). The
# registry builds are cold, every run starting from an empty blob cache, so the
# pull is part of every build and generation overlaps it, each layer scanned as
# soon as it has downloaded.
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
#   BENCH_REGISTRY 0 to measure the local layouts only   (default 1)
#   BENCH_LINK    tc rate of the limited link, e.g. 1gbit, 100mbit; empty skips
#                 those rows                          (default 1gbit)
#   BENCH_REG_DIR where the registry keeps its storage  (default BENCH_DIR)
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
# The registry is Debian's docker-registry (plain HTTP on a free loopback
# port), as in bench/pull.sh; the images are loaded into it with
# `skopeo copy --preserve-digests`. The limited link is a network namespace
# whose loopback carries a token bucket (`tc qdisc add dev lo root tbf rate
# BENCH_LINK burst 1mb latency 100ms`); the registry, the loading and the
# builds all run inside it (`ip netns exec`). Making the namespace needs root
# (CAP_SYS_ADMIN and CAP_NET_ADMIN); without it those rows are skipped with a
# note. The namespace is deleted on exit.
# The script rewrites only its own section of BENCH_DOC, between the
# `bench:sbom` markers, and creates the file when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/airgap-bench}
BENCH_SIZES=${BENCH_SIZES:-"256M 1G"}
BENCH_LAYERS=${BENCH_LAYERS:-8}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_DEBIAN=${BENCH_DEBIAN:-$ROOT/target/test-rootfs/bookworm-minbase/oci}
BENCH_REGISTRY=${BENCH_REGISTRY:-1}
BENCH_LINK=${BENCH_LINK-1gbit}
BENCH_REG_DIR=${BENCH_REG_DIR:-$BENCH_DIR}
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
# median, gen_layout, start_registry, stop_registry.
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

# --- 1. tools and binaries -------------------------------------------------

ensure_packages jq /usr/bin/time:time igzip:isal
if [[ $BENCH_REGISTRY == 1 ]]; then
    ensure_packages skopeo docker-registry
    [[ -z $BENCH_LINK ]] || ensure_packages ip:iproute2 tc:iproute2
fi

build_release_binaries

# --- helpers ---------------------------------------------------------------

mkdir -p "$BENCH_DIR"
[[ $BENCH_REGISTRY != 1 ]] || mkdir -p "$BENCH_REG_DIR"
TMP=$(mktemp -d "$BENCH_DIR/.run.XXXXXX")
CACHE=$TMP/cache # the registry builds' blob cache, deleted before every run
NETNS=""         # the rate-limited network namespace, while it exists
cleanup() {
    stop_registry
    [[ -z $NETNS ]] || ip netns delete "$NETNS" || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# Layer blob paths of the (only) image in a layout, one a line.
layer_files() {
    local dir=$1 top
    top=$(jq -r '.manifests[0].digest' "$dir/index.json")
    jq -r '.layers[].digest' "$dir/blobs/sha256/${top#sha256:}" |
        while read -r d; do printf '%s\n' "$dir/blobs/sha256/${d#sha256:}"; done
}

# BENCH_LINK as the tables print it: 1gbit is "1 Gbit/s"; other tc rates as given.
link_label() {
    if [[ ${BENCH_LINK,,} =~ ^([0-9.]+)([kmgt]?)bit$ ]]; then
        printf '%s %sbit/s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]^^}"
    else
        printf '%s\n' "$BENCH_LINK"
    fi
}

# The sources an image is built from, in the order of the tables.
declare -A SRC_NAME=([layout]=layout [loopback]="registry loopback" [link]="registry $(link_label)")

# make_netns: the network namespace, its loopback up and rate-limited to
# BENCH_LINK. Fails, the reason on stderr, without the privileges.
make_netns() {
    local ns=airgap-bench-sbom-$$
    ip netns add "$ns" || return 1
    NETNS=$ns
    ip netns exec "$NETNS" ip link set lo up &&
        ip netns exec "$NETNS" tc qdisc add dev lo root tbf rate "$BENCH_LINK" burst 1mb latency 100ms
}

# start_registry_netns: bench/lib.sh's registry, served from inside the
# namespace. start_registry writes the configuration and storage and checks
# that it serves on the host's loopback; that process is stopped and the same
# configuration served in the namespace, on the same port (free there: the
# namespace is new). `ip netns exec` execs, so REG_PID is the registry's.
start_registry_netns() {
    start_registry
    kill "$REG_PID"
    wait "$REG_PID" 2>/dev/null || true
    env -u REGISTRY_HTTP_ADDR ip netns exec "$NETNS" docker-registry serve "$REG_DIR/config.yml" \
        >>"$REG_DIR/registry.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 100); do
        # shellcheck disable=SC2016 # $1 is the inner shell's
        ip netns exec "$NETNS" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$REG_PORT" 2>/dev/null && return 0
        kill -0 "$REG_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$REG_DIR/registry.log" >&2
    die "docker-registry did not come up on 127.0.0.1:$REG_PORT in $NETNS"
}

# load_images ADDR [PREFIX...]: every case's image into the registry at ADDR as
# bench/LABEL:1.0 (skopeo run under PREFIX, say `ip netns exec NS`), with the
# manifest digest of its layout.
load_images() {
    local addr=$1 c label dir ref what digest got
    shift
    for c in "${CASES[@]}"; do
        IFS='|' read -r label dir ref what <<<"$c"
        log "loading $label into the registry at $addr${NETNS:+ (in $NETNS)}"
        "$@" skopeo copy --quiet --preserve-digests --dest-tls-verify=false \
            "oci:$dir:$ref" "docker://$addr/bench/${label,,}:1.0" >&2
        digest=$(jq -r '.manifests[0].digest' "$dir/index.json")
        got=$("$@" skopeo inspect --raw --tls-verify=false "docker://$addr/bench/${label,,}:1.0" |
            sha256sum | cut -d' ' -f1)
        [[ sha256:$got == "$digest" ]] || die "$label is sha256:$got in the registry, its layout has $digest"
    done
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
SOURCES=(layout)
ADDR=""        # the registry of the registry sources, 127.0.0.1:PORT
declare -A ROW DETAIL VERDICT GUNZIP IGZIP IGZIP_CPU

# build_once MODE [ARG...]: one timed build of measure_case's image (its
# locals: src, label, layers, manifest, out, inputs, run) into $out (MODE
# without: $out_skip). Every build starts from an empty cache folder (no
# pulled blob); MODE warm gets the layer scans (scans/) the case's first
# cold build stored, kept in $TMP/scans. A registry build must pull the
# manifest, config and every layer.
build_once() {
    local mode=$1 got dest=$out
    shift
    [[ $mode != without ]] || dest=$out_skip
    log "$label (${SRC_NAME[$src]}): build ${mode} SBOMs, run $i"
    rm -f "$dest"
    rm -rf "$CACHE"
    if [[ $mode == warm ]]; then
        mkdir -p "$CACHE"
        cp -r "$TMP/scans" "$CACHE/scans"
    fi
    sync -f "$BENCH_DIR"
    warm "${inputs[@]}"
    run_timed "$mode" "${run[@]}" env SOURCE_DATE_EPOCH=$EPOCH "AIRGAP_BUNDLE_CACHE=$CACHE" "$BUNDLE" build "$manifest" \
        --key "$KEY.key" --out "$dest" --json "$@"
    if [[ $src != layout ]]; then
        got=$(jq -r '.pull.blobsDownloaded' "$TMP/$mode.out")
        ((got == ${#layers[@]} + 2)) ||
            die "$label (${SRC_NAME[$src]}): the build pulled $got blobs, expected $((${#layers[@]} + 2))"
    fi
    local read cached
    read -r read cached < <(jq -r '[.sbom.layersRead // 0, .sbom.layersCached // 0] | @tsv' "$TMP/$mode.out")
    case $mode in
    with) ((read == ${#layers[@]} && cached == 0)) ;;
    warm) ((read == 0 && cached == ${#layers[@]})) ;;
    *) true ;;
    esac || die "$label (${SRC_NAME[$src]}): build $mode read $read layers and took $cached from the scan cache (${#layers[@]} layers)"
}

# measure_case SOURCE CASE: the case's image built BENCH_RUNS times with SBOMs,
# as many with cached layer scans and as many with --skip-sbom, from SOURCE (layout, loopback,
# link; the registry ones from ADDR); sets its ROW, DETAIL and VERDICT.
measure_case() {
    local src=$1 label dir ref what
    IFS='|' read -r label dir ref what <<<"$2"
    local layers layer_bytes manifest out inputs i run=() key=$label\|$src
    mapfile -t layers < <(layer_files "$dir")
    layer_bytes=$(stat -c %s "${layers[@]}" | awk '{ s += $1 } END { print s }')
    out=$BENCH_DIR/sbom-$label-$src.bundle
    local out_skip=$BENCH_DIR/sbom-$label-$src-skip.bundle
    if [[ $src == layout ]]; then
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
        inputs=("${layers[@]}")
    else
        # The registry's port changes with every run of the script: the
        # manifest lives in TMP.
        manifest=$TMP/sbom-$label-$src.yaml
        cat >"$manifest" <<EOF
# Written by bench/sbom.sh.
name: bench-sbom-${label,,}
version: 1.0.0
description: SBOM benchmark bundle, one registry image ($what).
registries:
  - host: $ADDR
    plainHttp: true
images:
  - source: $ADDR/bench/${label,,}:1.0
EOF
        mapfile -t inputs < <(find "$REG_DIR/data" -type f)
        [[ $src != link ]] || run=(ip netns exec "$NETNS")
    fi
    rm -f "$TMP"/*.times "$TMP"/*.sbom

    rm -rf "$TMP/scans" "$TMP/cold.bundle"
    # Three builds per run: with SBOMs (cold), with the layer scans cached
    # (warm) and --skip-sbom (without). Their order rotates from run to run,
    # so that drift in the machine's load and whatever one build leaves the
    # disk doing hit each alike. The first cold build's scans serve every
    # warm one; the first warm bundle must equal the first cold one.
    local order mode
    for ((i = 1; i <= BENCH_RUNS; i++)); do
        case $(((i - 1) % 3)) in
        0) order=(with warm without) ;;
        1) order=(without with warm) ;;
        *) order=(warm without with) ;;
        esac
        for mode in "${order[@]}"; do
            case $mode in
            with)
                build_once with
                jq -r '[.sbom.seconds, .sbom.packages, .sbom.imagesScanned, (.sbom.warnings | length), .blobs] | @tsv' \
                    "$TMP/with.out" >>"$TMP/with.sbom"
                if [[ ! -d $TMP/scans ]]; then
                    cp -r "$CACHE/scans" "$TMP/scans"
                    mv "$out" "$TMP/cold.bundle"
                fi
                ;;
            warm)
                build_once warm
                if [[ -f $TMP/cold.bundle ]]; then
                    cmp -s "$out" "$TMP/cold.bundle" ||
                        die "$label (${SRC_NAME[$src]}): the warm build's bundle differs from the cold one's"
                    rm -f "$TMP/cold.bundle"
                fi
                ;;
            without) build_once without --skip-sbom ;;
            esac
        done
        # Reference: stock gzip decompressing the same layers, one after the
        # other, which any scan of their contents has to do at least once.
        # Timed with the layout rows only: the layers are the same.
        if [[ $src == layout ]]; then
            log "$label: gzip -dc of the layers, run $i"
            warm "${layers[@]}"
            run_timed gunzip bash -c 'for l; do gzip -dc "$l"; done >/dev/null' _ "${layers[@]}"
            log "$label: igzip -dc of the layers, run $i"
            warm "${layers[@]}"
            # As many layers at a time as there are cores, as the scan does.
            run_timed igzip bash -c 'printf "%s\0" "$@" | xargs -0 -n 1 -P "$(nproc)" sh -c '\''igzip -dc "$1" >/dev/null'\'' _' _ "${layers[@]}"
        fi
    done
    # The skipped build scans no image and has four fewer blobs (two
    # documents for the image's one platform, two for the bundle); the last
    # bundle carries none.
    [[ $(jq -r '.sbom.imagesScanned // 0' "$TMP/without.out") == 0 ]] \
        || die "$label: build --skip-sbom scanned images"
    local packages scanned warnings blobs_with blobs_without
    read -r _ packages scanned warnings blobs_with < <(tail -n 1 "$TMP/with.sbom")
    blobs_without=$(jq -r .blobs "$TMP/without.out")
    ((scanned == 1 && blobs_with == blobs_without + 4)) ||
        die "$label: $scanned platforms scanned, $blobs_with blobs with SBOMs and $blobs_without without; expected 1 and a difference of 4"
    [[ $("$INSTALL" sbom "$out_skip" --trust "$KEY.pub" --list --json | jq length) == 0 ]] ||
        die "$label: the --skip-sbom bundle lists SBOMs"
    if [[ $src != layout ]]; then
        local want got
        want=$(jq -r '.manifests[0].digest' "$dir/index.json")
        got=$("$BUNDLE" inspect "$out" --json | jq -r '.images[].digest')
        [[ $got == "$want" ]] || die "$label (${SRC_NAME[$src]}): the bundle holds $got, the layout has $want"
    fi

    [[ $src != layout ]] || GUNZIP[$label]=$(median gunzip 1)
    [[ $src != layout ]] || IGZIP[$label]=$(median igzip 1)
    [[ $src != layout ]] || IGZIP_CPU[$label]=$(calc '%.3f' "$(median igzip 3) + $(median igzip 4)")
    local t_with t_without t_sbom share own r_with r_without mib_s t_gunzip vs_gunzip name
    name=${SRC_NAME[$src]}
    t_with=$(median with 1)
    t_without=$(median without 1)
    t_sbom=$(awk '{ print $1 }' "$TMP/with.sbom" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    share=$(calc '%.2f' "($t_with - $t_without) / $t_with * 100")
    local t_warm warm_share
    t_warm=$(median warm 1)
    warm_share=$(calc '%.2f' "($t_warm - $t_without) / $t_warm * 100")
    own=$(calc '%.2f' "$t_sbom / $t_with * 100")
    r_with=$(calc '%.1f' "$(maxcol with 2) / 1024")
    r_without=$(calc '%.1f' "$(maxcol without 2) / 1024")
    mib_s=$(calc '%.0f' "$layer_bytes / 1048576 / $t_sbom")
    t_gunzip=${GUNZIP[$label]}
    vs_gunzip=$(calc '%.2f' "$t_sbom / $t_gunzip")
    # The least share any generator that decompresses every layer once
    # could have here: the build can take no less than the fastest
    # decompression of the layers alone, nor than the CPU seconds of that
    # decompression and of the build without SBOMs spread over every CPU.
    local t_igzip floor least cpu_least
    t_igzip=${IGZIP[$label]}
    cpu_least=$(calc '%.4f' "(${IGZIP_CPU[$label]} + $(median without 3) + $(median without 4)) / $(nproc)")
    least=$(calc '%.4f' "($t_igzip > $cpu_least ? $t_igzip : $cpu_least)")
    floor=$(calc '%.1f' "($least > $t_without ? 1 - $t_without / $least : 0) * 100")

    ROW[$key]="| $label | $name | $(calc '%.3f' "$t_with") | $(calc '%.3f' "$t_without") | **$share %** | $(calc '%.3f' "$t_warm") | $warm_share % | $(calc '%.3f' "$t_sbom") ($own %) | $(calc '%.3f' "$t_gunzip") | ${vs_gunzip}× | $(calc '%.3f' "$t_igzip") | $floor % | $packages | $warnings |"
    DETAIL[$key]="| $label | $name | $what | $layer_bytes | $mib_s | $(calc '%.3f' "$(mincol with 1)")–$(calc '%.3f' "$(maxcol with 1)") | $(calc '%.3f' "$(mincol without 1)")–$(calc '%.3f' "$(maxcol without 1)") | $(median with 3) u + $(median with 4) s | $(median without 3) u + $(median without 4) s | $r_with / $r_without |"
    if awk "BEGIN { exit !($share <= $T_SHARE * 100) }"; then
        VERDICT[$key]="- $label, $name: SBOMs take $share % of a cold build ≤ $(calc '%.0f' "$T_SHARE * 100") % — met"
    else
        VERDICT[$key]="- $label, $name: SBOMs take $share % of a cold build > $(calc '%.0f' "$T_SHARE * 100") % — **missed**"
    fi
    VERDICT[$key]+=" ($warm_share % with the layer scans cached)"
    if awk "BEGIN { exit !($floor > $T_SHARE * 100) }"; then
        VERDICT[$key]+="; its floor is $floor %: no generator that reads the layers meets the target here on $(nproc) CPUs"
    fi
    log "$label ($name): build $t_with s with SBOMs ($t_warm s with cached layer scans), $t_without s without: $share % / $warm_share % (sbom.seconds $t_sbom s, $own %), $packages packages, RSS $r_with / $r_without MiB"
    [[ $BENCH_KEEP == 1 ]] || rm -f "$out" "$out_skip"
}

for c in "${CASES[@]}"; do
    measure_case layout "$c"
done

REGISTRY_NOTE=""
if [[ $BENCH_REGISTRY == 1 ]]; then
    start_registry
    ADDR=127.0.0.1:$REG_PORT
    load_images "$ADDR"
    SOURCES+=(loopback)
    for c in "${CASES[@]}"; do
        measure_case loopback "$c"
    done
    stop_registry

    if [[ -z $BENCH_LINK ]]; then
        log "BENCH_LINK is empty: no rate-limited rows"
    elif make_netns 2>"$TMP/netns.err"; then
        start_registry_netns
        ADDR=127.0.0.1:$REG_PORT
        load_images "$ADDR" ip netns exec "$NETNS"
        SOURCES+=(link)
        for c in "${CASES[@]}"; do
            measure_case link "$c"
        done
        stop_registry
        ip netns delete "$NETNS"
        NETNS=""
    else
        why=$(tr '\n' ' ' <"$TMP/netns.err" | sed 's/ *$//')
        REGISTRY_NOTE="No ${SRC_NAME[link]} rows: the rate-limited network namespace could not be made (${why:-no reason given})."
        if [[ $why == *"not permitted"* || $why == *"denied"* ]]; then
            REGISTRY_NOTE+=" \`ip netns add\` and \`tc\` need root."
        fi
        log "skipping the ${SRC_NAME[link]} rows: ${why:-could not make the network namespace}"
        [[ -z $NETNS ]] || ip netns delete "$NETNS" || true
        NETNS=""
    fi
fi

# --- 4. report -------------------------------------------------------------

LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]]; then commit="$commit (with uncommitted changes)"; fi
fstype=$(df -PT "$BENCH_DIR" | awk 'NR == 2 { print $2 }')

# The rows, image by image, each image's sources in the order measured.
ROWS=()
DETAILS=()
VERDICTS=()
for c in "${CASES[@]}"; do
    for src in "${SOURCES[@]}"; do
        key=${c%%|*}\|$src
        ROWS+=("${ROW[$key]}")
        DETAILS+=("${DETAIL[$key]}")
        VERDICTS+=("${VERDICT[$key]}")
    done
done
command_env="BENCH_SIZES=\"$BENCH_SIZES\" BENCH_LAYERS=$BENCH_LAYERS BENCH_RUNS=$BENCH_RUNS BENCH_REGISTRY=$BENCH_REGISTRY"
[[ $BENCH_REGISTRY != 1 ]] || command_env+=" BENCH_LINK=\"$BENCH_LINK\""

SECTION=$TMP/section.md
{
    echo "$MARK_START"
    echo "## SBOM generation's share of a build (\`bench/sbom.sh\`)"
    echo
    echo "<!-- Generated by bench/sbom.sh; rerun it rather than editing this section. -->"
    echo
    [[ -z $BENCH_NOTE ]] || { echo "$BENCH_NOTE"; echo; }
    echo "The same one-image manifest built with \`airgap-bundle build --json\` (SBOMs"
    echo "generated, the default), with \`--skip-sbom\`, and with the layer scans cached;"
    echo "each run builds all three, in an order that rotates from run to run. Inputs are pulled"
    echo "into the page cache before every timed build, times are the median of $BENCH_RUNS runs."
    echo "**SBOM share** is (with − without) / with: the build time SBOMs add."
    echo "Every build starts from an empty cache folder (\`AIRGAP_BUNDLE_CACHE\`), so \"with\""
    echo "reads every layer: a cold build. **Scans cached** is given the layer scans the"
    echo "first cold build stored (the cache's \`scans/\`; no pulled blobs): a rebuild, or"
    echo "the next release on the same layers. Its first bundle is checked to be"
    echo "byte-identical to the first cold one; its share is (cached − without) / cached."
    echo "\`sbom.seconds\` is what the build itself reports for generation (scanning every"
    echo "layer, writing the CycloneDX and SPDX documents), with its share of the build in"
    echo "brackets. The layers are scanned while every other blob is written (format"
    echo "version 6 stores the SBOM documents last; docs/format.md §16), so SBOMs add only"
    echo "the scanning that outlasts the write, and the documents."
    echo "The synthetic images are bench/bundle.sh's: random data holds no packages, so"
    echo "their rows are the floor of generation, every layer decompressed and walked."
    echo "The Debian image is a real root filesystem (debootstrap \`--variant=minbase\`,"
    echo "packed by umoci), where the dpkg database, copyright files and every"
    echo "executable are read."
    echo "Reference: \`gzip -dc\` of the same layers (one after the other, output"
    echo "discarded), timed in the same runs: decompressing every layer once is the"
    echo "least any content scan does. \`igzip -dc\` (Intel ISA-L, Debian's \`isal\`) is the"
    echo "fastest stock gzip decompressor here, run on as many layers at a time as there"
    echo "are cores (as the scan does). **Floor share** is 1 − without ÷ least, where"
    echo "least is the longer of igzip's time and (igzip's CPU seconds + the --skip-sbom"
    echo "build's CPU seconds) ÷ $(nproc) CPUs: the least share any SBOM generator that"
    echo "decompresses every layer once could have on this build and machine, even with the"
    echo "fastest decoder, a free tar walk and a perfect overlap with the write (whose own"
    echo "CPU time is counted). For registry sources it leaves out the registry's CPU time."
    decoder=$(jq -r '.sbom.gzipDecoder // "unknown"' "$TMP/with.out" 2>/dev/null || echo unknown)
    if [[ $decoder == isal ]]; then
        echo "The bundler's scan inflates gzip layers with the same ISA-L decoder (\`sbom.gzipDecoder\`: isal)."
    else
        echo "The bundler's scan inflated gzip layers with $decoder (\`sbom.gzipDecoder\`), not ISA-L."
    fi
    if [[ $BENCH_REGISTRY == 1 ]]; then
        echo
        echo "Each image is built from several sources (the **Source** column)."
        echo "**layout**: its OCI layout on disk (\`oci-layout:DIR:REF\`)."
        echo "**registry loopback**: Debian's \`docker-registry\` $(docker-registry --version 2>/dev/null | awk '{ print $NF }')"
        echo "on 127.0.0.1 (plain HTTP), the image loaded into it by skopeo $(skopeo --version | awk '{ print $NF }')"
        echo "(\`skopeo copy --preserve-digests\`) and named in the manifest as"
        echo "\`127.0.0.1:PORT/bench/NAME:1.0\`, with \`registries: [{host: 127.0.0.1:PORT, plainHttp: true}]\`."
        if [[ -n $BENCH_LINK ]]; then
            echo "**${SRC_NAME[link]}**: the same, with the registry, the loading and the builds in a"
            echo "network namespace whose loopback is rate-limited"
            echo "(\`tc qdisc add dev lo root tbf rate $BENCH_LINK burst 1mb latency 100ms\`)."
        fi
        echo "Every registry build starts from an empty blob cache (\`AIRGAP_BUNDLE_CACHE\`,"
        echo "deleted before each run), so each run pulls the manifest, the config and every"
        echo "layer; client and registry share the CPUs. The gzip -dc reference is timed"
        echo "with the layout rows and repeated in the registry rows (the same layers)."
        echo "With registry sources the pull is part of the build and the scan overlaps it"
        echo "layer by layer (each layer is scanned as soon as it has downloaded), so SBOMs add"
        echo "only the scanning that outlasts the download, and the documents; there"
        echo "\`sbom.seconds\` spans generation including its waits for layers still"
        echo "downloading. From local layouts the write is nearly a copy (the compressed"
        echo "layers go in as stored frames), so the scan's share of the build is highest there."
    fi
    [[ -z $DEBIAN_NOTE ]] || { echo; echo "$DEBIAN_NOTE"; }
    [[ -z $REGISTRY_NOTE ]] || { echo; echo "$REGISTRY_NOTE"; }
    echo
    echo "- Command: \`$command_env bash bench/sbom.sh\`"
    echo "- Machine: $(nproc) CPUs, $cpu, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), scratch on $fstype"
    echo "- Load average (1 min) at start / end: $LOAD_START / $LOAD_END (other work on the machine skews the numbers; rerun when it is idle)"
    echo "- Date: $(date -u +%Y-%m-%d), commit $commit, $(rustc --version 2>/dev/null || echo rustc unknown)"
    echo "- Target: SBOM generation does not dominate the build, share ≤ $(calc '%.0f' "$T_SHARE * 100") %"
    echo
    echo "| Image | Source | Build s with SBOMs | Build s --skip-sbom | SBOM share | Build s, scans cached | Share, scans cached | sbom.seconds (of build) | gzip -dc s | sbom.seconds ÷ gzip -dc | igzip -dc s | Floor share | Packages | Warnings |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Context: what the image is; its layer bytes; layer bytes per second of"
    echo "\`sbom.seconds\` (for registry sources bounded by the pull, which generation"
    echo "waits for); the spread of the runs; CPU seconds (user + system, medians; the"
    echo "client's only); peak RSS (GNU time \`%M\`, the largest of the runs)."
    echo
    echo "| Image | Source | What | Layer bytes | Scan MiB/s | With s min–max | Without s min–max | CPU s with | CPU s without | Peak RSS MiB (with / without) |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    end_section "Target:"
} >"$SECTION"

publish_section "$SECTION"
