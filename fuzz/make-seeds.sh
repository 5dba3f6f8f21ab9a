#!/usr/bin/env bash
# Builds the seeds of the manifest, archive, archive_tar and docker_save
# fuzz targets that are made rather than stored, from the repository's
# fixtures, into seeds/<target>/gen-* (ignored by git; the committed seeds
# beside them are small hand-picked inputs):
#
#   archive      bundles built by airgap-bundle from manifests/demo.yaml and
#                smaller manifests over the same fixtures (plain, split into
#                media parts and joined again, a delta), signed with the
#                fuzz-only key (keys/), so verify_archive, which trusts it,
#                gets past the signature; and pieces cut from them:
#                bundle.json, index.json, bundle.seal, the first tar header,
#                the first frame, the seek table.
#   archive_tar  the same bundles as the tar streams the target takes:
#                bundle.json and the body, without the signature, the seal
#                and the end of the archive (see src/sealed.rs).
#   docker_save  the demo's legacy `docker save` tarball, and the fixtures'
#                OCI layouts as tarballs (the form Docker 25+ saves).
#   manifest     the repository's manifests.
#
# Needs cargo (it builds airgap-bundle), zstd and GNU tar. Called by
# scripts/fuzz.sh before it runs the targets; safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
fuzz=$PWD
repo=$(cd .. && pwd)
for tool in zstd tar dd od; do
    command -v "$tool" >/dev/null || {
        echo "make-seeds.sh: $tool is needed" >&2
        exit 2
    }
done

# AIRGAP_SEEDS_TARGET_DIR: the main workspace's target folder to build
# airgap-bundle in (default CARGO_TARGET_DIR, else target/), so that the
# fuzz build, which also reads CARGO_TARGET_DIR, can keep its own.
target=${AIRGAP_SEEDS_TARGET_DIR:-${CARGO_TARGET_DIR:-$repo/target}}
case $target in /*) ;; *) target=$repo/$target ;; esac
(cd "$repo" && CARGO_TARGET_DIR=$target cargo build --quiet --locked -p airgap-bundle --bin airgap-bundle)
bundler=$target/debug/airgap-bundle
key=$fuzz/keys/fuzz-only.key
work=$(mktemp -d "${TMPDIR:-/tmp}/airgap-fuzz-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT

for t in manifest archive archive_tar docker_save; do
    mkdir -p "seeds/$t"
    rm -f "seeds/$t"/gen-*
done

# A manifest in $work over the fixtures of manifests/: paths made absolute.
# Usage: manifest NAME VERSION BODY
manifest() {
    local abs=$repo/manifests
    printf 'name: %s\nversion: %s\n%s\n' "$1" "$2" "$3" |
        sed -e "s#source: demo/#source: $abs/demo/#" \
            -e "s#-layout:demo/#-layout:$abs/demo/#" \
            -e "s#-archive:demo/#-archive:$abs/demo/#" >"$work/$1-$2.yaml"
    echo "$work/$1-$2.yaml"
}

build() { # OUT MANIFEST [ARGS...]
    local out=$1 m=$2
    shift 2
    SOURCE_DATE_EPOCH=1700000000 AIRGAP_BUNDLE_CACHE=$work/cache \
        "$bundler" build "$m" --key "$key" --out "$out" "$@" >/dev/null
}

files='files:
  - source: demo/files/README.md
    name: docs/README.md
    kind: documentation'
worker='images:
  - source: docker-archive:demo/images/worker-docker.tar:demo/worker:1.0.0'
web='images:
  - source: oci-layout:demo/images/web-oci:demo/web:1.0.0'

build "$work/demo.bundle" "$repo/manifests/demo.yaml"
build "$work/files.bundle" "$(manifest files 1.0.0 "$files")" --skip-sbom
build "$work/worker.bundle" "$(manifest worker 1.0.0 "$worker
$files")" --skip-sbom
build "$work/web.bundle" "$(manifest web 1.0.0 "$web")"
# Media parts of 64 KiB, joined again: bundle.json has a split key.
build "$work/split.bundle" "$(manifest split 1.0.0 "$web
$files")" --skip-sbom --split 64KiB
cat "$work"/split.bundle.part-* >"$work/split-joined.bundle"
rm -f "$work"/split.bundle.part-*
# A delta of the worker bundle: base and baseBlobs.
build "$work/delta.bundle" "$(manifest worker 1.0.1 "$worker
$files")" --skip-sbom --base "$work/worker.bundle"

# The tar stream the archive_tar target takes: bundle.json, then the body
# (from the entry after bundle.json.minisig up to bundle.seal).
to_stream() { # BUNDLE OUT
    local stream=$work/stream listing sig body seal
    zstd -qdc "$1" >"$stream"
    listing=$(tar -tRf "$stream")
    sig=$(sed -n 's/^block \([0-9]*\): bundle\.json\.minisig$/\1/p' <<<"$listing")
    body=$(awk '{ if (prev ~ /: bundle\.json\.minisig$/) { sub(":", "", $2); print $2 } prev = $0 }' <<<"$listing")
    seal=$(sed -n 's/^block \([0-9]*\): bundle\.seal$/\1/p' <<<"$listing")
    {
        dd if="$stream" bs=512 count="$sig" status=none
        dd if="$stream" bs=512 skip="$body" count=$((seal - body)) status=none
    } >"$2"
}

u32_at() { # FILE OFFSET: the little-endian u32 there
    od -An -tu4 -j "$2" -N 4 --endian=little "$1" | tr -d ' '
}

for b in demo files worker web split-joined delta; do
    cp "$work/$b.bundle" "seeds/archive/gen-$b.bundle"
    to_stream "$work/$b.bundle" "seeds/archive_tar/gen-$b.tar"
done
for b in demo delta split-joined; do
    for entry in bundle.json index.json bundle.seal; do
        zstd -qdc "$work/$b.bundle" | tar -xOf - "$entry" >"seeds/archive/gen-$b-$entry"
    done
done
zstd -qdc "$work/demo.bundle" -o "$work/demo.tar"
head -c 512 "$work/demo.tar" >seeds/archive/gen-demo-header
# The seek table (8 + 8 n + 9 bytes at the end) and the first frame.
bundle=$work/demo.bundle
size=$(stat -c %s "$bundle")
frames=$(u32_at "$bundle" $((size - 9)))
table=$((8 + 8 * frames + 9))
tail -c "$table" "$bundle" >seeds/archive/gen-demo-seek-table
first=$(u32_at "$bundle" $((size - table + 8)))
head -c "$first" "$bundle" >seeds/archive/gen-demo-frame-0

# docker save tarballs: legacy, and OCI layouts in a tarball.
cp "$repo/manifests/demo/images/worker-docker.tar" seeds/docker_save/gen-worker-legacy.tar
for layout in demo/images/web-oci reference/images/platform-oci; do
    name=$(basename "$layout")
    tar --format=ustar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
        -cf "seeds/docker_save/gen-$name.tar" -C "$repo/manifests/$layout" .
done

cp "$repo/manifests/demo.yaml" seeds/manifest/gen-demo.yaml
cp "$repo/manifests/reference-platform.yaml" seeds/manifest/gen-reference-platform.yaml
for m in "$work"/*.yaml; do
    cp "$m" "seeds/manifest/gen-$(basename "$m")"
done

for t in manifest archive archive_tar docker_save; do
    echo "make-seeds.sh: seeds/$t: $(find "seeds/$t" -name 'gen-*' | wc -l) generated seeds" >&2
done
