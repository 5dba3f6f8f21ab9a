#!/usr/bin/env bash
# Builds the release of both tools for x86_64 and aarch64 Linux: static
# (musl) binaries, stripped, with Intel ISA-L, zstd and SQLite linked in,
# reproducible from the commit; next to them a CycloneDX SBOM per binary,
# SHA256SUMS and its minisign signature by the release key, one folder per
# architecture.
#
# Usage: bash scripts/release.sh --key RELEASE.key --out DIR [--target-dir DIR]
#
# Output: DIR/x86_64/ and DIR/aarch64/, each with
#   airgap-bundle, airgap-install, *.cdx.json, SHA256SUMS, SHA256SUMS.minisig
#
# x86_64 is built with Debian's musl-gcc; aarch64 is cross-compiled with
# `cargo zigbuild` and zig's own clang and musl (both pinned, installed
# from PyPI into a virtualenv under ~/.cache/airgap-release when missing).
#
# Reproducible: SOURCE_DATE_EPOCH is the commit's date (unless set), every
# path the build sees is remapped (--remap-path-prefix for Rust,
# -ffile-prefix-map for C), dependencies come from Cargo.lock (--locked),
# and the binaries are stripped. Two builds of one commit, in different
# folders, give the same bytes (docs/release-engineer-guide.md §7).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# The aarch64 cross toolchain, pinned: zig (its clang, lld and musl 1.2.5)
# from the PyPI package ziglang, and cargo-zigbuild from PyPI too (a
# prebuilt binary, no compile).
ZIG_VERSION=0.15.2
ZIGBUILD_VERSION=0.24.1

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
for triple in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
done

# ensure_zig — puts the pinned zig and cargo-zigbuild on PATH, installing
# them with pip into their own virtualenv when that is missing or holds
# other versions.
ensure_zig() {
    local venv=${AIRGAP_ZIG_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/airgap-release/zig-$ZIG_VERSION-zigbuild-$ZIGBUILD_VERSION}
    if [ "$("$venv/bin/python3" -m ziglang version 2>/dev/null)" != "$ZIG_VERSION" ] \
        || [ "$("$venv/bin/cargo-zigbuild" --version 2>/dev/null)" != "cargo-zigbuild $ZIGBUILD_VERSION" ]; then
        command -v python3 >/dev/null || ensure_packages python3
        python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_packages python3-venv:python3-venv
        python3 -c 'import venv, ensurepip' 2>/dev/null || {
            echo "release.sh: python3 cannot make a virtualenv (install Debian's python3-venv)" >&2; exit 1; }
        echo "installing: ziglang==$ZIG_VERSION cargo-zigbuild==$ZIGBUILD_VERSION (PyPI) into $venv" >&2
        [ ! -e "$venv" ] || [ -f "$venv/pyvenv.cfg" ] || {
            echo "release.sh: $venv is not a virtualenv; set AIRGAP_ZIG_VENV to a new folder" >&2; exit 1; }
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check \
            "ziglang==$ZIG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION" || {
            echo "release.sh: pip could not install ziglang==$ZIG_VERSION and cargo-zigbuild==$ZIGBUILD_VERSION from PyPI (is PyPI reachable? the aarch64 build needs them)" >&2
            exit 1; }
    fi
    zig_dir=$("$venv/bin/python3" -c 'import os, ziglang; print(os.path.dirname(ziglang.__file__))')
    # cargo-zigbuild takes the first `zig` on PATH: this virtualenv's.
    ln -sfn "$zig_dir/zig" "$venv/bin/zig"
    export PATH="$venv/bin:$PATH"
    zig_lib=$zig_dir/lib
}
ensure_zig

repo=$PWD
target_dir=${target_dir:-$repo/target/release-build}
mkdir -p "$target_dir" "$out"
target_dir=$(cd "$target_dir" && pwd)
out=$(cd "$out" && pwd)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export AIRGAP_BUILD_COMMIT=${AIRGAP_BUILD_COMMIT:-$(git rev-parse HEAD)}
remap="--remap-path-prefix=$repo=/build/airgap --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target_dir=/target"
cmap="-ffile-prefix-map=$repo=/build/airgap -ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$target_dir=/target"
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=symbols
export CARGO_INCREMENTAL=0

# x86_64: Debian's musl-gcc compiles the C code and links.
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$remap -C target-feature=+crt-static"
export CFLAGS_x86_64_unknown_linux_musl="$cmap"
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build --release --locked --target x86_64-unknown-linux-musl --target-dir "$target_dir" \
    -p airgap-bundle -p airgap-install --features airgap-bundle/isal

# aarch64: cargo zigbuild sets zig cc as the C compiler (zstd, SQLite, and
# ISA-L's configure, which builds its aarch64 assembly with it) and as the
# linker, against zig's own musl. zig's cache is kept in the target folder,
# so a build from nothing is one.
export ZIG_GLOBAL_CACHE_DIR=$target_dir/zig-cache
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$remap -C target-feature=+crt-static"
export CFLAGS_aarch64_unknown_linux_musl="$cmap -ffile-prefix-map=$zig_lib=/zig/lib"
cargo zigbuild --release --locked --target aarch64-unknown-linux-musl --target-dir "$target_dir" \
    -p airgap-bundle -p airgap-install --features airgap-bundle/isal

signer=$target_dir/x86_64-unknown-linux-musl/release/airgap-bundle
for arch in x86_64 aarch64; do
    triple=$arch-unknown-linux-musl
    dest=$out/$arch
    mkdir -p "$dest"
    if [ "$arch" = aarch64 ]; then libc=(--zig-lib "$zig_lib"); else libc=(); fi
    for tool in airgap-bundle airgap-install; do
        install -m 0755 "$target_dir/$triple/release/$tool" "$dest/$tool"
        python3 scripts/release-sbom.py --package "$tool" --target "$triple" \
            --binary "$dest/$tool" "${libc[@]}" > "$dest/$tool.cdx.json"
    done
    (cd "$dest" && sha256sum airgap-bundle airgap-install airgap-bundle.cdx.json airgap-install.cdx.json > SHA256SUMS)
    "$signer" sign "$dest/SHA256SUMS" --key "$key" >/dev/null
    echo "release $(git describe --always --dirty) ($AIRGAP_BUILD_COMMIT, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH) in $dest:"
    (cd "$dest" && cat SHA256SUMS)
done
