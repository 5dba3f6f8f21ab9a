#!/usr/bin/env bash
# End-to-end demo on the data the repository ships: make a signing key, build
# the demo bundle, inspect it, verify it as an operator would, check it with
# stock tools (zstd, tar, minisign, skopeo), push its images into a registry
# started on loopback, render the configuration for a sample site and print
# the install plan, list and extract its SBOMs, show a tampered copy refused,
# then activate a demo licence offline (request -> issue -> bundle), check
# the site with preflight, run the one-command install that records it and
# an upgrade, install a delta from media parts, and roll back. There is no
# Kubernetes cluster here: the rollback applies through the real Helm 3 in
# template mode and a kubectl stand-in, and says so. Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_build_packages
ensure_packages zstd tar skopeo minisign docker-registry
helm_bin=$(bash scripts/install-helm.sh)
cargo build --workspace --bins --locked --quiet --features airgap-bundle/isal
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

step "6. operator: push the images into a site registry (started here on loopback)"
mkdir -p "$work/registry"
registry_dir=$(cd "$work/registry" && pwd)
port=$(free_loopback_port) || { echo "no free loopback port" >&2; exit 1; }
cat > "$work/registry/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $registry_dir/data
http:
  addr: 127.0.0.1:$port
  secret: demo-only
YAML
env -u REGISTRY_HTTP_ADDR docker-registry serve "$work/registry/config.yml" > "$work/registry/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
wait_for_port "$port" "$registry_pid" || { cat "$work/registry/registry.log" >&2; exit 1; }
echo "registry: 127.0.0.1:$port (plain HTTP, loopback only)"
$bin/airgap-install push "$work/demo.bundle" --trust "$work/vendor.pub" \
    --registry "127.0.0.1:$port/site" --plain-http --relocation-map "$work/relocation-map.json"
echo "a second push only checks the tags:"
$bin/airgap-install push "$work/demo.bundle" --trust "$work/vendor.pub" \
    --registry "127.0.0.1:$port/site" --plain-http --relocation-map "$work/relocation-map.json"
for ref in demo/web:1.0.0 demo/worker:1.0.0; do
    digest=$(skopeo inspect --tls-verify=false --raw "docker://127.0.0.1:$port/site/$ref" | sha256sum | cut -d' ' -f1)
    echo "skopeo reads 127.0.0.1:$port/site/$ref: sha256:$digest"
done

step "7. operator: render the configuration for a sample site (manifests/site.example.yaml)"
# The example site, pointed at the loopback registry the images went to.
cp -r manifests/site-secrets "$work/"
sed -e "s|host: registry.internal.example:5000|host: 127.0.0.1:$port\n  plainHttp: true|" \
    -e "s|prefix: platform|prefix: site|" manifests/site.example.yaml > "$work/site.yaml"
PLATFORM_OIDC_CLIENT_SECRET=demo-oidc-secret IMAGING_DB_PASSWORD=demo-imaging-password \
    $bin/airgap-install render "$work/demo.bundle" --trust "$work/vendor.pub" \
    --site "$work/site.yaml" --relocation "$work/relocation-map.json" --out "$work/rendered"
echo "values files (mode 0600 when they hold a secret):"
ls -l "$work/rendered/values"
grep '^image:' "$work/rendered/values/hello.yaml"
echo "install plan:"
grep -v '^#' "$work/rendered/install-plan.sh" | sed '/^$/d'

step "8. compliance: the SBOMs the bundle carries (signature and digests checked)"
$bin/airgap-install sbom "$work/demo.bundle" --trust "$work/vendor.pub" --list
$bin/airgap-install sbom "$work/demo.bundle" --trust "$work/vendor.pub" --out "$work/sboms"

step "9. operator: a tampered bundle is refused"
cp "$work/demo.bundle" "$work/tampered.bundle"
# Flip every bit of one byte in the middle of the archive.
offset=$(( $(stat -c %s "$work/tampered.bundle") / 2 ))
byte=$(dd if="$work/tampered.bundle" bs=1 skip="$offset" count=1 status=none | od -An -tu1 | tr -d ' ')
printf "\\$(printf %o $(( 255 - byte )))" | dd of="$work/tampered.bundle" bs=1 seek="$offset" conv=notrunc status=none
if $bin/airgap-install verify "$work/tampered.bundle" --trust "$work/vendor.pub"; then
    echo "tampered bundle was accepted" >&2
    exit 1
fi
echo "refused, as it should be"

step "10. licence: the site requests one, the vendor issues it, the next bundle carries it"
# The demo node's identity: this machine's /etc/machine-id when it has one,
# else a demo id (a fresh container may have none). Only an HMAC of it
# leaves the site.
if [[ ! -s /etc/machine-id && ! -s /var/lib/dbus/machine-id ]]; then
    mkdir -p "$work/node/etc"
    echo 0123456789abcdef0123456789abcdef > "$work/node/etc/machine-id"
    export AIRGAP_INSTALL_HOST_ROOT=$work/node
fi
state="$work/state"
$bin/airgap-install --state-dir "$state" license request --product demo --out "$work/license-request.json"
cat "$work/license-request.json"
$bin/airgap-bundle license issue --request "$work/license-request.json" --key "$work/vendor.key" \
    --customer "Demo Research Site" --expires 2099-01-01 --grace-days 14 \
    --features dashboard,sso --limit workspaces=5 --ledger "$work/licenses-issued.json" --out "$work/site.lic"
cat "$work/site.lic"
# The same product, version 1.1.0, now carrying the licence.
sed -e "s|source: demo/|source: $PWD/manifests/demo/|" -e "s|: *\([a-z-]*\):demo/|: \1:$PWD/manifests/demo/|" \
    -e "s|^version: 1.0.0|version: 1.1.0|" \
    manifests/demo.yaml > "$work/demo-licensed.yaml"
echo "license: $PWD/$work/site.lic" >> "$work/demo-licensed.yaml"
SOURCE_DATE_EPOCH=1700000000 $bin/airgap-bundle build "$work/demo-licensed.yaml" --key "$work/vendor.key" \
    --out "$work/demo-1.1.0.bundle"

step "11. operator: preflight finds every problem at once, then one command installs 1.0.0, then upgrades to 1.1.0 and activates its licence"
echo "preflight before the site's secrets are set (it reports, and changes nothing):"
if env -u PLATFORM_OIDC_CLIENT_SECRET -u IMAGING_DB_PASSWORD \
    $bin/airgap-install --state-dir "$state" preflight "$work/demo.bundle" --site "$work/site.yaml" --trust "$work/vendor.pub"; then
    echo "preflight passed without the secrets" >&2
    exit 1
fi
export PLATFORM_OIDC_CLIENT_SECRET=demo-oidc-secret IMAGING_DB_PASSWORD=demo-imaging-password
$bin/airgap-install --state-dir "$state" preflight "$work/demo.bundle" --site "$work/site.yaml" --trust "$work/vendor.pub"
$bin/airgap-install --state-dir "$state" install "$work/demo.bundle" --site "$work/site.yaml" --trust "$work/vendor.pub"
$bin/airgap-install --state-dir "$state" plan "$work/demo-1.1.0.bundle" --site "$work/site.yaml" --trust "$work/vendor.pub"
$bin/airgap-install --state-dir "$state" install "$work/demo-1.1.0.bundle" --site "$work/site.yaml" --trust "$work/vendor.pub"
echo "a downgrade is refused:"
if $bin/airgap-install --state-dir "$state" install "$work/demo.bundle" --site "$work/site.yaml" --trust "$work/vendor.pub"; then
    echo "downgrade was accepted" >&2
    exit 1
fi

step "12. delta bundle on media parts: 1.2.0 leaves out what 1.1.0 delivered, cut into parts"
sed -e "s|^version: 1.1.0|version: 1.2.0|" "$work/demo-licensed.yaml" > "$work/demo-1.2.0.yaml"
rm -f "$work"/demo-1.2.0.bundle.part-*
SOURCE_DATE_EPOCH=1700000000 $bin/airgap-bundle build "$work/demo-1.2.0.yaml" --key "$work/vendor.key" \
    --base "$work/demo-1.1.0.bundle" --split 64KiB --out "$work/demo-1.2.0.bundle"
$bin/airgap-bundle inspect "$work/demo-1.2.0.bundle" | tail -4
$bin/airgap-install verify "$work/demo-1.2.0.bundle" --trust "$work/vendor.pub"
# The registry already holds what the delta leaves out; the parts are read in place.
$bin/airgap-install --state-dir "$state" install "$work/demo-1.2.0.bundle.part-001" --site "$work/site.yaml" --trust "$work/vendor.pub"
$bin/airgap-install --state-dir "$state" license status --trust "$work/vendor.pub"

step "13. operator: roll back to 1.1.0 from its recorded configuration and the images in the registry"
# No Kubernetes cluster here: helm is the real Helm 3 run as `helm template`
# (so the chart is pulled from the registry and rendered with the recorded
# values), and kubectl a stand-in that answers `kubectl version`.
mkdir -p "$work/no-cluster"
cat > "$work/no-cluster/helm" <<HELM
#!/bin/sh
[ "\$1" = version ] && exec '$helm_bin' version --template '{{.Version}}'
[ "\$1 \$2" = "upgrade --install" ] || { echo "demo: no cluster here, only helm upgrade --install is run (as helm template)" >&2; exit 1; }
shift 2
echo "helm template \$1 \$2 (no cluster here)"
exec '$helm_bin' template "\$@" --kube-version 1.30.0 > /dev/null
HELM
cat > "$work/no-cluster/kubectl" <<'KUBECTL'
#!/bin/sh
# A stand-in: no Kubernetes cluster here. It answers `kubectl version` only.
[ "$1" = version ] || exit 1
echo '{"clientVersion":{"gitVersion":"v1.30.0"},"serverVersion":{"gitVersion":"v1.30.0"}}'
KUBECTL
chmod +x "$work/no-cluster/helm" "$work/no-cluster/kubectl"
PATH="$(cd "$work/no-cluster" && pwd):$PATH" $bin/airgap-install --state-dir "$state" rollback demo --site "$work/site.yaml" --skip-health
$bin/airgap-install --state-dir "$state" status
echo "audit log:"
$bin/airgap-install --state-dir "$state" history
printf '\ndemo complete: files in %s\n' "$work"
