#!/usr/bin/env bash
# Builds the release of both tools: static (musl) x86_64 Linux binaries,
# stripped, with Intel ISA-L linked in, reproducible from the commit; next
# to them a CycloneDX SBOM per binary, SHA256SUMS and its minisign
# signature by the release key.
#
# Usage: bash scripts/release.sh --key RELEASE.key --out DIR [--target-dir DIR]
#
# Output: DIR/x86_64/{airgap-bundle,airgap-install,*.cdx.json,SHA256SUMS,SHA256SUMS.minisig}
#
# Reproducible: SOURCE_DATE_EPOCH is the commit's date (unless set), every
# path the build sees is remapped (--remap-path-prefix for Rust,
# -ffile-prefix-map for C), dependencies come from Cargo.lock (--locked),
# and the binaries are stripped. Two builds of one commit, in different
# folders, give the same bytes (docs/release-engineer-guide.md §7).
# aarch64 is not built yet (issue 17).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

key= out= target_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --key) key=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --target-dir) target_dir=$2; shift 2 ;;
        *) echo "release.sh: unknown argument $1 (usage: --key KEY --out DIR [--target-dir DIR])" >&2; exit 2 ;;
    esac
done
[ -n "$key" ] && [ -n "$out" ] || { echo "release.sh: --key KEY and --out DIR are needed" >&2; exit 2; }
[ -f "$key" ] || { echo "release.sh: $key: no such key (airgap-bundle keygen --out release makes one)" >&2; exit 1; }

ensure_build_packages
ensure_packages musl-gcc:musl-tools sha256sum:coreutils
rustup target list --installed | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl

repo=$PWD
target_dir=${target_dir:-$repo/target/release-build}
mkdir -p "$target_dir" "$out"
target_dir=$(cd "$target_dir" && pwd)
out=$(cd "$out" && pwd)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export AIRGAP_BUILD_COMMIT=${AIRGAP_BUILD_COMMIT:-$(git rev-parse HEAD)}
remap="--remap-path-prefix=$repo=/build/airgap --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target_dir=/target"
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$remap -C target-feature=+crt-static"
export CFLAGS_x86_64_unknown_linux_musl="-ffile-prefix-map=$repo=/build/airgap -ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$target_dir=/target"
export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=symbols
export CARGO_INCREMENTAL=0

arch=x86_64
triple=x86_64-unknown-linux-musl
cargo build --release --locked --target "$triple" --target-dir "$target_dir" \
    -p airgap-bundle -p airgap-install
dest=$out/$arch
mkdir -p "$dest"
for tool in airgap-bundle airgap-install; do
    install -m 0755 "$target_dir/$triple/release/$tool" "$dest/$tool"
    python3 scripts/release-sbom.py --package "$tool" --target "$triple" \
        --binary "$dest/$tool" > "$dest/$tool.cdx.json"
done
(cd "$dest" && sha256sum airgap-bundle airgap-install airgap-bundle.cdx.json airgap-install.cdx.json > SHA256SUMS)
"$target_dir/$triple/release/airgap-bundle" sign "$dest/SHA256SUMS" --key "$key" >/dev/null
echo "release $(git describe --always --dirty) ($AIRGAP_BUILD_COMMIT, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH) in $dest:"
(cd "$dest" && cat SHA256SUMS)
