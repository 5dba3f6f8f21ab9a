#!/usr/bin/env bash
# End-to-end demo on the data the repository ships: make a signing key, build
# the demo bundle, inspect it, verify it as an operator would, check it with
# stock tools (zstd, tar, minisign, skopeo), push its images into a registry
# started on loopback, render the configuration for a sample site and print
# the install plan, list and extract its SBOMs, and show a tampered copy
# refused. Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages zstd tar skopeo minisign docker-registry
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
printf '\ndemo complete: files in %s\n' "$work"
