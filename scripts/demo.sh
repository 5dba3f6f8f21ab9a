#!/usr/bin/env bash
# End-to-end demo on the data the repository ships: make a signing key, build
# the demo bundle, inspect it, verify it as an operator would, then check it
# with stock tools (zstd, tar, minisign, skopeo). Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages zstd tar skopeo minisign
cargo build --workspace --bins --locked --quiet
bin=target/debug
work=${DEMO_DIR:-target/demo}
rm -rf "$work" && mkdir -p "$work"

step() { printf '\n== %s\n' "$*"; }

step "1. release engineer: create a signing key"
$bin/airgap-bundle keygen --out "$work/vendor"

step "2. release engineer: build the demo bundle (reproducible: SOURCE_DATE_EPOCH is set)"
SOURCE_DATE_EPOCH=1700000000 $bin/airgap-bundle build manifests/demo.yaml --key "$work/vendor.key" --out "$work/demo.bundle"

step "3. anyone: inspect it (reads only the head of the archive)"
$bin/airgap-install inspect "$work/demo.bundle"

step "4. operator: verify the signature and every entry"
$bin/airgap-install verify "$work/demo.bundle" --trust "$work/vendor.pub"

step "5. independent checks with stock tools"
mkdir -p "$work/extracted"
zstd -dc "$work/demo.bundle" | tar -x -C "$work/extracted"
minisign -Vm "$work/extracted/bundle.json" -p "$work/vendor.pub"
for ref in demo/web:1.0.0 demo/worker:1.0.0; do
    digest=$(skopeo inspect --raw "oci:$work/extracted:$ref" | sha256sum | cut -d' ' -f1)
    echo "skopeo reads $ref: sha256:$digest"
done

step "6. operator: a tampered bundle is refused"
cp "$work/demo.bundle" "$work/tampered.bundle"
printf '\x00' | dd of="$work/tampered.bundle" bs=1 seek=3000 conv=notrunc status=none
if $bin/airgap-install verify "$work/tampered.bundle" --trust "$work/vendor.pub"; then
    echo "tampered bundle was accepted" >&2
    exit 1
fi
echo "refused, as it should be"
printf '\ndemo complete: files in %s\n' "$work"
