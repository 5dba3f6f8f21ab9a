#!/usr/bin/env bash
# The whole test suite: installs the real tools the tests drive, builds every
# binary, runs every test. Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_build_packages
ensure_packages zstd tar skopeo minisign docker-registry rpm rpmbuild:rpm go:golang-go debootstrap umoci script:bsdutils unshare:util-linux sha256sum:coreutils objdump:binutils pip3:python3-pip qemu-img:qemu-utils debugfs:e2fsprogs qemu-aarch64-static:qemu-user-static
AIRGAP_HELM=$(bash scripts/install-helm.sh)
export AIRGAP_HELM
# The SBOM tests build real rpm databases, Go binaries and cargo-auditable
# binaries; with every tool installed, a missing one is a failure.
command -v cargo-auditable >/dev/null || cargo install --locked --quiet cargo-auditable
export AIRGAP_REQUIRE_TOOLS=1
# Builds the tests run keep their cache (pulled blobs, layer scans) in a
# folder of this run's own, not in the user's cache.
AIRGAP_BUNDLE_CACHE=$(mktemp -d "${TMPDIR:-/tmp}/airgap-test-cache.XXXXXX")
export AIRGAP_BUNDLE_CACHE
trap 'rm -rf "$AIRGAP_BUNDLE_CACHE"' EXIT
cargo build --workspace --bins --locked --features airgap-bundle/isal
# The release build (static binaries for both architectures, signed sums),
# made once: the tests of the release artifacts share it
# (tests/src/harness.rs release_build).
AIRGAP_RELEASE_DIR=$PWD/target/test-release
rm -rf "$AIRGAP_RELEASE_DIR" && mkdir -p "$AIRGAP_RELEASE_DIR/key"
target/debug/airgap-bundle keygen --out "$AIRGAP_RELEASE_DIR/key/release" >/dev/null
AIRGAP_RELEASE_PUB=$AIRGAP_RELEASE_DIR/key/release.pub
bash scripts/release.sh --key "$AIRGAP_RELEASE_DIR/key/release.key" --out "$AIRGAP_RELEASE_DIR" >/dev/null
export AIRGAP_RELEASE_DIR AIRGAP_RELEASE_PUB
cargo test --workspace --locked --features airgap-bundle/isal,airgap-e2e/e2e
