#!/usr/bin/env bash
# The whole test suite: installs the real tools the tests drive, builds every
# binary, runs every test. Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages zstd tar skopeo minisign docker-registry
AIRGAP_HELM=$(bash scripts/install-helm.sh)
export AIRGAP_HELM
cargo build --workspace --bins --locked
cargo test --workspace --locked
