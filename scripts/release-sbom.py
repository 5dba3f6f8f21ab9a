#!/usr/bin/env python3
"""CycloneDX 1.6 SBOM of one release binary's own dependencies.

Usage: release-sbom.py --package airgap-install --target TRIPLE --binary FILE
                       [--zig-lib DIR]

The crates are the package's normal dependencies, resolved by
`cargo metadata --locked --filter-platform TRIPLE` (features as
scripts/release.sh builds them: the bundler's `isal`), each with its version, licence expression and package URL.
The C code linked into the static binary is listed too: Intel ISA-L (when
isal-sys is a dependency; its version is the ISA-L commit isal-sys vendors)
and musl libc: the version of Debian's musl package that linked it, or,
for a cross build with zig (--zig-lib: zig's lib folder), the musl release
zig carries (its src/internal/version.h) and zig's version. The
output is deterministic: the time is SOURCE_DATE_EPOCH, the serial number
is derived from the binary's SHA-256, and the workspace's own packages are
named by the folder the build remaps the tree to (/build/airgap), not by
where it was checked out.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--package", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--binary", required=True)
    p.add_argument("--zig-lib", help="zig's lib folder, when zig's musl linked the binary")
    a = p.parse_args()

    text = subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked",
         "--features", "airgap-bundle/isal", "--filter-platform", a.target], text=True)
    # The workspace's own packages have ids naming the folder the tree was
    # built in ("path+file:///home/…/format#airgap-format@0.1.0"); they are
    # written as the folder the build remaps it to, so the SBOM does not
    # depend on where the tree was checked out.
    workspace = json.dumps("path+file://" + json.loads(text)["workspace_root"])[1:-1]
    meta = json.loads(text.replace(workspace, "path+file:///build/airgap"))
    packages = {pkg["id"]: pkg for pkg in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(pid for pid, pkg in packages.items()
                if pkg["name"] == a.package and pkg["source"] is None)

    # The closure of normal (not dev, not build) dependencies.
    seen, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                stack.append(dep["pkg"])

    def component(pkg):
        c = {
            "type": "library",
            "bom-ref": pkg["id"],
            "name": pkg["name"],
            "version": pkg["version"],
        }
        if pkg["source"] and pkg["source"].startswith("registry+"):
            c["purl"] = f"pkg:cargo/{pkg['name']}@{pkg['version']}"
        if pkg.get("license"):
            c["licenses"] = [{"expression": pkg["license"]}]
        if pkg.get("repository"):
            c["externalReferences"] = [{"type": "vcs", "url": pkg["repository"]}]
        return c

    components = [component(packages[pid]) for pid in sorted(seen) if pid != root]
    dependencies = [
        {"ref": pid, "dependsOn": sorted(d["pkg"] for d in nodes[pid]["deps"]
                                         if d["pkg"] in seen and
                                         any(k["kind"] is None for k in d["dep_kinds"]))}
        for pid in sorted(seen)
    ]

    # C code linked in.
    isal = [packages[pid] for pid in seen if packages[pid]["name"] == "isal-sys"]
    for pkg in isal:
        commit = pkg["version"].split("+", 1)[1] if "+" in pkg["version"] else "unknown"
        components.append({
            "type": "library", "bom-ref": "c:isa-l", "name": "isa-l",
            "supplier": {"name": "Intel Corporation"}, "version": commit,
            "purl": f"pkg:github/intel/isa-l@{commit}",
            "licenses": [{"expression": "BSD-3-Clause"}],
            "description": "Intel ISA-L, built from the source isal-sys vendors and linked statically",
        })
        dependencies.append({"ref": "c:isa-l", "dependsOn": []})
        for d in dependencies:
            if d["ref"] == pkg["id"]:
                d["dependsOn"].append("c:isa-l")
    # Other C libraries built from source by -sys crates.
    def add_c(sys_pkg, ref, name, version, purl, licence, supplier):
        components.append({
            "type": "library", "bom-ref": ref, "name": name,
            "supplier": {"name": supplier}, "version": version, "purl": purl,
            "licenses": [{"expression": licence}],
            "description": f"built from the source {sys_pkg['name']} {sys_pkg['version']} carries, linked statically",
        })
        dependencies.append({"ref": ref, "dependsOn": []})
        for d in dependencies:
            if d["ref"] == sys_pkg["id"]:
                d["dependsOn"].append(ref)

    for pid in sorted(seen):
        pkg = packages[pid]
        src = os.path.dirname(pkg["manifest_path"])
        if pkg["name"] == "zstd-sys" and "+zstd." in pkg["version"]:
            v = pkg["version"].split("+zstd.", 1)[1]
            add_c(pkg, "c:zstd", "zstd", v, f"pkg:github/facebook/zstd@v{v}",
                  "BSD-3-Clause OR GPL-2.0-only", "Meta Platforms, Inc.")
        if pkg["name"] == "libsqlite3-sys":
            header = os.path.join(src, "sqlite3", "sqlite3.h")
            v = "unknown"
            if os.path.exists(header):
                for line in open(header, encoding="utf-8", errors="replace"):
                    if line.startswith("#define SQLITE_VERSION "):
                        v = line.split('"')[1]
                        break
            add_c(pkg, "c:sqlite", "sqlite", v, f"pkg:generic/sqlite@{v}",
                  "blessing", "SQLite")

    if "musl" in a.target:
        if a.zig_lib:
            musl = "unknown"
            with open(os.path.join(a.zig_lib, "libc", "musl", "src", "internal", "version.h")) as f:
                for line in f:
                    if line.startswith("#define VERSION "):
                        musl = line.split('"')[1]
            zig = subprocess.check_output(
                [os.path.join(os.path.dirname(a.zig_lib), "zig"), "version"], text=True).strip()
            purl = f"pkg:generic/musl@{musl}"
            description = f"the C library, from the musl source zig {zig} carries, linked statically"
        else:
            musl = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "musl"],
                                  capture_output=True, text=True).stdout.strip() or "unknown"
            purl = f"pkg:deb/debian/musl@{musl}"
            description = "the C library, linked statically"
        components.append({
            "type": "library", "bom-ref": "c:musl", "name": "musl",
            "version": musl, "purl": purl,
            "licenses": [{"expression": "MIT"}],
            "description": description,
        })
        dependencies.append({"ref": "c:musl", "dependsOn": []})
        for d in dependencies:
            if d["ref"] == root:
                d["dependsOn"].append("c:musl")

    with open(a.binary, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    pkg = packages[root]
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": uuid.UUID(digest[:32], version=4).urn,
        "version": 1,
        "metadata": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
            "tools": {"components": [{"type": "application", "name": "release-sbom.py"}]},
            "component": {
                "type": "application",
                "bom-ref": root,
                "name": pkg["name"],
                "version": pkg["version"],
                "description": f"{pkg['name']} for {a.target}, static",
                "licenses": [{"expression": pkg["license"]}] if pkg.get("license") else [],
                "hashes": [{"alg": "SHA-256", "content": digest}],
            },
        },
        "components": components,
        "dependencies": dependencies,
    }
    json.dump(bom, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
