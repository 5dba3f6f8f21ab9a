//! Node-locked licences end to end, through the real binaries: the site's
//! `airgap-install license request|activate|status`, the vendor's
//! `airgap-bundle license issue`, and a bundle that carries a licence.
//!
//! Every node is a temporary host root holding a fake `etc/machine-id`
//! (`AIRGAP_INSTALL_HOST_ROOT`), so nothing depends on the machine running
//! the tests; `AIRGAP_INSTALL_CONFIG_DIR` points nowhere, so no system-wide
//! trusted key is picked up. Every refusal is checked for exit status 1,
//! one `error:` line naming the file, and the reason.
//!
//! Covered:
//!
//! 1. the full flow: request (no raw machine id or cluster UID in it) →
//!    issue (features, limits, grace) → activate → status as text and
//!    JSON → the activation in the audit log (`history --json`);
//! 2. renewal through the serial ledger: serial 2 replaces serial 1, the
//!    older serial is refused as a replay, the same licence again is
//!    "already active", another licence with the same serial is refused;
//! 3. tampering: a changed header, flipped characters in the base64 body,
//!    truncations, garbage, binary, empty, oversized and missing files, a
//!    damaged stored licence; refusals leave the active licence alone;
//! 4. another node (machine fingerprint) and cluster binding (no UID, a
//!    wrong UID, the right one), and nodes without a usable machine id;
//! 5. an untrusted vendor key (named in the error), no key at all;
//! 6. the clock set back behind the watermark: status and activation;
//! 7. a licence not valid yet (`--not-before`);
//! 8. an algorithm off the allow-list, in the envelope and in the signed
//!    payload, and an unsupported payload format;
//! 9. the issuer refusing an expired licence; licences signed by the test
//!    with arbitrary dates: in grace (warning), past grace (refused),
//!    issued in the future (clock behind);
//! 10. a bundle carrying a licence (format version 4, `license` entry with
//!     digest and size, verifies) and a manifest naming a garbled licence.

use std::path::{Path, PathBuf};
use std::process::Command;

use airgap_e2e::harness::*;
use airgap_format::{ArchiveReader, KeyId, Limits, PublicKey};
use airgap_licenses::license::{signing_input, Envelope, BEGIN_LINE, END_LINE};
use airgap_licenses::{Component, LicensePayload, Request};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

// --- the site, the vendor and their commands ----------------------------

/// Node A's machine id (as systemd writes it: lowercase, newline).
const MACHINE_A: &str = "4c4c4544004a3510805ab4c04f595a32";
/// Node B's machine id: "another node".
const MACHINE_B: &str = "9f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// The Kubernetes cluster's kube-system UID.
const CLUSTER_UID: &str = "0f8e3c1a-5b2d-4e6f-9a7b-1c2d3e4f5a6b";
/// Operator name recorded in the audit log (`SUDO_USER` wins).
const OPERATOR: &str = "e2e-operator";
const CUSTOMER: &str = "Example Hospital";

/// A vendor with a signing key and a serial ledger, and a site: node A's
/// host root and the installer's state folder, all in one temp dir.
struct Site {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key: PathBuf,
    public: PathBuf,
    ledger: PathBuf,
    node_a: PathBuf,
    state: PathBuf,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (key, public) = keygen(&dir, "vendor");
        let node_a = host_root(&dir, "node-a", &format!("{MACHINE_A}\n"));
        Site {
            key,
            public,
            ledger: dir.join("ledger.json"),
            node_a,
            state: dir.join("state"),
            dir,
            _tmp: tmp,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `airgap-install --state-dir STATE` on node A.
    fn install(&self) -> Command {
        self.install_on(&self.node_a)
    }

    /// `airgap-install --state-dir STATE` on the node whose root is `host`.
    fn install_on(&self, host: &Path) -> Command {
        let mut c = Command::new(bin("airgap-install"));
        c.arg("--state-dir")
            .arg(&self.state)
            .env("AIRGAP_INSTALL_HOST_ROOT", host)
            .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
            .env_remove("AIRGAP_INSTALL_STATE_DIR")
            .env_remove("RUST_LOG")
            .env("SUDO_USER", OPERATOR);
        c
    }

    /// `license request --out DIR/NAME [--cluster-uid UID]` on node A.
    fn request(&self, name: &str, cluster_uid: Option<&str>) -> PathBuf {
        let out = self.path(name);
        let mut c = self.install();
        c.args([
            "license",
            "request",
            "--product",
            "reference-platform",
            "--out",
        ])
        .arg(&out);
        if let Some(uid) = cluster_uid {
            c.args(["--cluster-uid", uid]);
        }
        let stdout = ok(&mut c);
        assert!(stdout.contains("send it to the vendor"), "{stdout}");
        out
    }

    /// `airgap-bundle license issue` for `request` into DIR/NAME, with the
    /// site's ledger and expiring in 100 days unless `extra` says otherwise.
    fn issue_cmd(&self, request: &Path, name: &str, extra: &[&str]) -> Command {
        let mut c = Command::new(bin("airgap-bundle"));
        c.args(["license", "issue", "--request"])
            .arg(request)
            .arg("--key")
            .arg(&self.key)
            .args(["--customer", CUSTOMER])
            .arg("--out")
            .arg(self.path(name))
            .env_remove("RUST_LOG");
        if !extra.contains(&"--ledger") {
            c.arg("--ledger").arg(&self.ledger);
        }
        if !extra.contains(&"--expires") {
            c.args(["--expires", &date_in(100)]);
        }
        c.args(extra);
        c
    }

    /// Issues a licence; returns its path.
    fn issue(&self, request: &Path, name: &str, extra: &[&str]) -> PathBuf {
        let stdout = ok(&mut self.issue_cmd(request, name, extra));
        assert!(stdout.starts_with("wrote "), "{stdout}");
        self.path(name)
    }

    /// `license activate FILE --trust VENDOR.pub` on node A.
    fn activate(&self, license: &Path) -> Command {
        self.activate_on(&self.node_a, license)
    }

    fn activate_on(&self, host: &Path, license: &Path) -> Command {
        let mut c = self.install_on(host);
        c.args(["license", "activate"])
            .arg(license)
            .arg("--trust")
            .arg(&self.public);
        c
    }

    /// `license status --trust VENDOR.pub` on node A.
    fn status(&self) -> Command {
        let mut c = self.install();
        c.args(["license", "status", "--trust"]).arg(&self.public);
        c
    }

    /// `license status --json`, parsed (it must succeed).
    fn status_json(&self) -> Value {
        json(&ok(self.status().arg("--json")))
    }

    /// The serial in `STATE/license/active.json`.
    fn active_serial(&self) -> u64 {
        let record = json(&read_text(&self.state.join("license/active.json")));
        record["serial"].as_u64().expect("serial")
    }

    /// The stored licence, its record and the clock watermark, to check
    /// that a refusal changed nothing.
    fn snapshot(&self) -> Vec<(String, Option<Vec<u8>>)> {
        ["license/active.lic", "license/active.json", "clock.json"]
            .iter()
            .map(|rel| (rel.to_string(), std::fs::read(self.state.join(rel)).ok()))
            .collect()
    }

    /// The audit log (`history --json`), one JSON value a line.
    fn history(&self) -> Vec<Value> {
        ok(self.install().args(["history", "--json"]))
            .lines()
            .map(json)
            .collect()
    }
}

/// A host root under `dir` whose `etc/machine-id` holds `content`.
fn host_root(dir: &Path, name: &str, content: &str) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/machine-id"), content).unwrap();
    root
}

/// The date `days` from today (UTC), as `--expires` takes it.
fn date_in(days: i64) -> String {
    let d = (OffsetDateTime::now_utc() + Duration::days(days)).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The error line of a refusal must name `file` first.
fn assert_names(line: &str, file: &Path) {
    let prefix = format!("error: {}: ", file.display());
    assert!(
        line.starts_with(&prefix),
        "expected {prefix:?}…, got: {line}"
    );
}

/// The time now as the licence files write it.
fn utc(t: OffsetDateTime) -> String {
    airgap_licenses::utc::format(t)
}

// --- taking licence files apart -----------------------------------------

/// A licence file split into its header lines and its decoded envelope.
struct Armor {
    headers: Vec<String>,
    envelope: Value,
}

impl Armor {
    fn parse(text: &str) -> Armor {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], BEGIN_LINE);
        let blank = lines.iter().position(|l| l.is_empty()).expect("blank line");
        let end = lines.iter().position(|l| *l == END_LINE).expect("END line");
        let body: String = lines[blank + 1..end].concat();
        let envelope = serde_json::from_slice(&B64.decode(body).unwrap()).unwrap();
        Armor {
            headers: lines[1..blank].iter().map(|l| l.to_string()).collect(),
            envelope,
        }
    }

    /// Armors again, as a writer would (64-column body).
    fn text(&self) -> String {
        armor(&self.headers, &serde_json::to_vec(&self.envelope).unwrap())
    }
}

fn armor(headers: &[String], envelope_json: &[u8]) -> String {
    let mut text = format!("{BEGIN_LINE}\n");
    for h in headers {
        text.push_str(h);
        text.push('\n');
    }
    text.push('\n');
    let body = B64.encode(envelope_json);
    for chunk in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(chunk).unwrap());
        text.push('\n');
    }
    text.push_str(END_LINE);
    text.push('\n');
    text
}

// --- a vendor key held by the test, to sign what the issuer refuses -------

/// An Ed25519 vendor key from fixed bytes, its minisign public key file
/// trusted by the site.
struct TestVendor {
    signing: SigningKey,
    key_id: KeyId,
    public: PathBuf,
}

impl TestVendor {
    fn new(dir: &Path) -> TestVendor {
        let signing = SigningKey::from_bytes(&[0x5a; 32]);
        let key_id = KeyId(0x0123_4567_89ab_cdefu64.to_le_bytes());
        let public = dir.join("test-vendor.pub");
        let key = PublicKey {
            key_id,
            key: signing.verifying_key(),
        };
        std::fs::write(&public, key.to_minisign_text()).unwrap();
        TestVendor {
            signing,
            key_id,
            public,
        }
    }

    /// The payload a vendor would sign for `request`, with these dates.
    fn payload(
        &self,
        request: &Request,
        serial: u64,
        issued_at: OffsetDateTime,
        expires: OffsetDateTime,
        grace_days: u32,
    ) -> LicensePayload {
        let whole = airgap_licenses::utc::whole_seconds;
        LicensePayload {
            format: 1,
            alg: "Ed25519".into(),
            key_id: self.key_id.to_string(),
            product: request.product.clone(),
            serial,
            customer: CUSTOMER.into(),
            issued_at: whole(issued_at),
            not_before: whole(issued_at),
            expires: whole(expires),
            grace_days,
            features: vec!["audit".into()],
            limits: [("workspaces".to_string(), 5)].into(),
            fingerprint: request.fingerprint.clone(),
            bind: vec![Component::Machine],
            request_nonce: request.nonce.clone(),
        }
    }

    /// Signs `payload_json` as docs/licenses.md §6 says and armors it with
    /// the headers of `headers_from`.
    fn sign_bytes(&self, headers_from: &LicensePayload, payload_json: &[u8]) -> String {
        let signature = self.signing.sign(&signing_input(payload_json));
        let envelope = Envelope {
            alg: "Ed25519".into(),
            key_id: self.key_id.to_string(),
            payload: B64.encode(payload_json),
            signature: B64.encode(signature.to_bytes()),
        };
        let headers: Vec<String> = headers_from
            .header_values()
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        armor(&headers, &serde_json::to_vec(&envelope).unwrap())
    }

    fn sign(&self, payload: &LicensePayload) -> String {
        self.sign_bytes(payload, &serde_json::to_vec(payload).unwrap())
    }
}

// --- 1. the full flow ----------------------------------------------------

#[test]
fn request_issue_activate_status_and_audit() {
    let site = Site::new();

    // The request carries keyed hashes only, in the file and on stdout.
    let request = site.path("request.json");
    let stdout = ok(site
        .install()
        .args(["license", "request", "--out"])
        .arg(&request)
        .args(["--product", "reference-platform", "--json"]));
    let text = read_text(&request);
    assert_eq!(json(&stdout), json(&text));
    for raw in [MACHINE_A, &MACHINE_A.to_uppercase()] {
        assert!(!text.contains(raw), "raw machine id in the request: {text}");
        assert!(!stdout.contains(raw), "raw machine id on stdout: {stdout}");
    }
    let r = json(&text);
    assert_eq!(r["format"], "airgap-license-request/v1");
    assert_eq!(r["product"], "reference-platform");
    let machine = r["fingerprint"]["machine"].as_str().unwrap();
    assert_eq!(machine.len(), 64, "{text}");
    assert!(r["fingerprint"].get("cluster").is_none(), "{text}");
    assert_eq!(r["nonce"].as_str().unwrap().len(), 32, "{text}");

    // With a cluster UID the UID stays on the site as well.
    let with_cluster = site.request("request-cluster.json", Some(CLUSTER_UID));
    let text = read_text(&with_cluster);
    for raw in [MACHINE_A, CLUSTER_UID, &CLUSTER_UID.replace('-', "")] {
        assert!(!text.contains(raw), "raw id {raw} in the request: {text}");
    }
    let r = json(&text);
    assert_eq!(
        r["fingerprint"]["machine"], machine,
        "same machine, same hash"
    );
    assert_eq!(r["fingerprint"]["cluster"].as_str().unwrap().len(), 64);

    // The vendor issues serial 1, with features, limits and grace.
    let expires = date_in(100);
    let lic = site.issue(
        &request,
        "site.lic",
        &[
            "--expires",
            &expires,
            "--grace-days",
            "14",
            "--features",
            "sso,audit",
            "--limit",
            "workspaces=5",
            "--limit",
            "nodes=3",
        ],
    );
    let lic_text = read_text(&lic);
    for header in [
        "Product: reference-platform".to_string(),
        format!("Customer: {CUSTOMER}"),
        "Serial: 1".to_string(),
        format!("Expires: {expires}T00:00:00Z"),
    ] {
        assert!(lic_text.contains(&header), "{header:?} in {lic_text}");
    }
    let ledger = json(&read_text(&site.ledger));
    assert_eq!(
        ledger["sites"][format!("reference-platform/{machine}")],
        1,
        "{ledger}"
    );
    let key_id = PublicKey::from_file(&site.public)
        .unwrap()
        .key_id
        .to_string();

    // Activation.
    let before = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let a = json(&ok(site.activate(&lic).arg("--json")));
    let after = OffsetDateTime::now_utc() + Duration::seconds(1);
    assert_eq!(a["alreadyActive"], false, "{a}");
    assert!(a["replacedSerial"].is_null(), "{a}");
    assert_eq!(a["license"]["serial"], 1, "{a}");
    assert_eq!(a["license"]["state"], "valid", "{a}");
    assert_eq!(read_text(&site.state.join("license/active.lic")), lic_text);
    assert_eq!(
        read_text(&site.state.join("license/history/1.lic")),
        lic_text
    );
    assert_eq!(site.active_serial(), 1);
    let clock = json(&read_text(&site.state.join("clock.json")));
    let last_seen = airgap_licenses::utc::parse(clock["lastSeen"].as_str().unwrap())
        .unwrap_or_else(|| panic!("clock.json: {clock}"));
    assert!(before <= last_seen && last_seen <= after, "{clock}");

    // Status, as text.
    let text = ok(&mut site.status());
    for line in [
        format!("Customer:  {CUSTOMER}"),
        "Product:   reference-platform".to_string(),
        "Serial:    1".to_string(),
        format!("to {expires}T00:00:00Z (grace 14 days)"),
        "Features:  audit, sso".to_string(),
        "Limits:    nodes=3, workspaces=5".to_string(),
        format!("Signed by: {key_id}"),
        "Status:    valid, ".to_string(),
    ] {
        assert!(text.contains(&line), "{line:?} in:\n{text}");
    }
    // Expiry is midnight 100 days ahead: 99 whole days left (100 exactly at
    // midnight, 98 if midnight passed since `date_in`).
    let plausible = 98..=100u64;
    assert!(
        plausible
            .clone()
            .any(|d| text.contains(&format!("Status:    valid, {d} days left\n"))),
        "{text}"
    );

    // Status, as JSON.
    let s = site.status_json();
    assert_eq!(s["customer"], CUSTOMER, "{s}");
    assert_eq!(s["product"], "reference-platform", "{s}");
    assert_eq!(s["serial"], 1, "{s}");
    assert_eq!(s["features"], serde_json::json!(["audit", "sso"]), "{s}");
    assert_eq!(
        s["limits"],
        serde_json::json!({"nodes": 3, "workspaces": 5}),
        "{s}"
    );
    assert_eq!(s["expires"], format!("{expires}T00:00:00Z"), "{s}");
    assert_eq!(s["graceDays"], 14, "{s}");
    assert_eq!(s["keyId"], key_id, "{s}");
    assert_eq!(s["state"], "valid", "{s}");
    let days_left = s["daysLeft"].as_u64().unwrap();
    assert!(plausible.contains(&days_left), "{s}");
    assert!(s.get("problem").is_none(), "{s}");

    // The audit log has the activation: operator, time, outcome.
    let log = site.history();
    let activations: Vec<&Value> = log
        .iter()
        .filter(|r| r["command"] == "license activate")
        .collect();
    assert_eq!(activations.len(), 1, "{log:?}");
    let r = activations[0];
    assert_eq!(r["step"], "activate", "{r}");
    assert_eq!(r["outcome"], "ok", "{r}");
    assert_eq!(r["operator"], OPERATOR, "{r}");
    let time = OffsetDateTime::parse(
        r["time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(before <= time && time <= after, "{r}");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("serial 1 for {CUSTOMER} (reference-platform)")),
        "{r}"
    );
    assert!(detail.starts_with(&lic.display().to_string()), "{r}");
    let text = ok(site.install().arg("history"));
    assert!(
        text.contains("license activate") && text.contains(OPERATOR),
        "{text}"
    );
}

// --- 2. renewal ------------------------------------------------------------

#[test]
fn renewal_replaces_and_older_serial_is_a_replay() {
    let site = Site::new();
    let first = site.issue(
        &site.request("request-1.json", None),
        "serial-1.lic",
        &["--features", "audit"],
    );
    let second = site.issue(
        &site.request("request-2.json", None),
        "serial-2.lic",
        &["--features", "audit,sso", "--expires", &date_in(400)],
    );
    assert!(read_text(&second).contains("Serial: 2\n"));

    let out = ok(&mut site.activate(&first));
    assert!(out.starts_with("activated: serial 1\n"), "{out}");
    let out = ok(&mut site.activate(&second));
    assert!(
        out.starts_with("activated: serial 2 (replaces serial 1)\n"),
        "{out}"
    );
    assert_eq!(site.active_serial(), 2);

    // Replaying serial 1 (fewer features) is refused; serial 2 stays.
    let before = site.snapshot();
    let line = fails(&mut site.activate(&first));
    assert_names(&line, &first);
    assert!(
        line.ends_with(
            "serial 1 is older than the active licence's serial 2; refusing a replayed licence"
        ),
        "{line}"
    );
    assert_eq!(site.snapshot(), before);
    let s = site.status_json();
    assert_eq!(s["serial"], 2, "{s}");
    assert_eq!(s["features"], serde_json::json!(["audit", "sso"]), "{s}");

    // The same licence again changes nothing.
    let out = ok(&mut site.activate(&second));
    assert!(out.starts_with("already active: serial 2\n"), "{out}");
    let a = json(&ok(site.activate(&second).arg("--json")));
    assert_eq!(a["alreadyActive"], true, "{a}");
    assert!(a["replacedSerial"].is_null(), "{a}");
    assert_eq!(site.snapshot()[..2], before[..2]);

    // Another licence with serial 2 (a vendor that lost its ledger) conflicts.
    let lost = site.path("lost-ledger.json");
    let lost = lost.to_str().unwrap();
    let request = site.request("request-3.json", None);
    for name in ["lost-1.lic", "lost-2.lic"] {
        site.issue(&request, name, &["--ledger", lost]);
    }
    let conflict = site.path("lost-2.lic");
    assert!(read_text(&conflict).contains("Serial: 2\n"));
    let line = fails(&mut site.activate(&conflict));
    assert_names(&line, &conflict);
    assert!(
        line.contains("serial 2 is the active licence's serial, but the licence differs"),
        "{line}"
    );
    assert_eq!(site.active_serial(), 2);

    // The audit log tells all of it apart.
    let outcomes: Vec<(String, String)> = site
        .history()
        .iter()
        .filter(|r| r["command"] == "license activate")
        .map(|r| {
            (
                r["outcome"].as_str().unwrap().to_string(),
                r["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let kinds: Vec<&str> = outcomes.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        kinds,
        ["ok", "ok", "refused", "ok", "ok", "refused"],
        "{outcomes:?}"
    );
    assert!(outcomes[2].1.contains("refusing a replayed licence"));
    assert!(outcomes[3].1.ends_with(", already active"), "{outcomes:?}");
    assert!(outcomes[5].1.contains("conflicting licence"));
    assert!(site.state.join("license/history/1.lic").is_file());
    assert!(site.state.join("license/history/2.lic").is_file());
}

// --- 3. tampering -----------------------------------------------------------

#[test]
fn tampered_truncated_and_garbage_files_are_refused() {
    let site = Site::new();
    let good = site.issue(&site.request("request.json", None), "site.lic", &[]);
    ok(&mut site.activate(&good));
    let original = read_text(&good);
    let before = site.snapshot();
    let bad = site.path("bad.lic");
    let refused = |content: &[u8]| -> String {
        std::fs::write(&bad, content).unwrap();
        let line = fails(&mut site.activate(&bad));
        assert_names(&line, &bad);
        assert_eq!(site.snapshot(), before, "after {line}");
        line
    };

    // The human-readable headers are checked against the signed payload.
    let line = refused(
        original
            .replace(&format!("Customer: {CUSTOMER}"), "Customer: Someone Else")
            .as_bytes(),
    );
    assert!(
        line.ends_with("header Customer does not match the signed licence"),
        "{line}"
    );
    let line = refused(original.replace("Serial: 1\n", "Serial: 9\n").as_bytes());
    assert!(
        line.ends_with("header Serial does not match the signed licence"),
        "{line}"
    );
    let line = refused(original.replace("Customer: ", "Kunde: ").as_bytes());
    assert!(line.contains("unknown header \"Kunde\""), "{line}");

    // Body characters changed to another base64 character: refused,
    // whatever they hit (outer base64, envelope JSON, algorithm, key id,
    // inner base64, payload, signature).
    let body_start = original.find("\n\n").unwrap() + 2;
    let body_end = original.find(END_LINE).unwrap();
    let body: Vec<usize> = (body_start..body_end)
        .filter(|&i| original.as_bytes()[i] != b'\n')
        .collect();
    // Every 5th character, and the last one.
    let picked = body
        .iter()
        .copied()
        .enumerate()
        .filter(|(n, _)| n % 5 == 0 || *n == body.len() - 1)
        .map(|(_, i)| i);
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for i in picked {
        let mut bytes = original.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let line = refused(&bytes);
        let reason = line[format!("error: {}: ", bad.display()).len()..].to_string();
        let reason: String = reason.chars().take(30).collect();
        *reasons.entry(reason).or_default() += 1;
    }
    assert!(reasons.len() > 1, "{reasons:#?}");

    // Inside the envelope: any payload or signature character changed to
    // another base64 character breaks the signature, and only that.
    let key_id = PublicKey::from_file(&site.public)
        .unwrap()
        .key_id
        .to_string();
    let armor = Armor::parse(&original);
    for field in ["payload", "signature"] {
        let value = armor.envelope[field].as_str().unwrap().to_string();
        // Not the last characters: their padding bits must stay zero.
        for i in (0..value.len() - 4).step_by(9) {
            let mut changed = value.clone().into_bytes();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let mut tampered = Armor::parse(&original);
            tampered.envelope[field] = String::from_utf8(changed).unwrap().into();
            let line = refused(tampered.text().as_bytes());
            assert!(
                line.ends_with(&format!(
                    "signature by key {key_id} does not match the licence (altered or corrupted)"
                )),
                "{field}[{i}]: {line}"
            );
        }
    }

    // Truncated at several lengths: before the BEGIN line, inside the
    // headers, inside the body, inside the END line.
    let len = original.len();
    let body_at = original.find("\n\n").unwrap() + 2;
    for cut in [
        0,
        1,
        10,
        31,
        40,
        80,
        body_at,
        len / 2,
        len - 40,
        len - 20,
        len - 5,
    ] {
        let line = refused(&original.as_bytes()[..cut]);
        let expected: &[&str] = if cut < BEGIN_LINE.len() {
            &["not armored"]
        } else {
            &["truncated: no \"-----END AIRGAP LICENSE-----\" line"]
        };
        assert!(
            expected.iter().any(|e| line.contains(e)),
            "cut at {cut}: {line}"
        );
    }

    // Garbage of every kind.
    let line = refused(b"");
    assert!(line.contains("not armored"), "{line}");
    let line = refused(b"this is not a licence\n");
    assert!(line.contains("not armored"), "{line}");
    let line = refused(&[0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x01]);
    assert!(line.ends_with("not UTF-8 text"), "{line}");
    let line = refused(
        format!("{BEGIN_LINE}\nProduct: x\nCustomer: y\nSerial: 1\nExpires: z\nKey: k\n\n!!!!\n{END_LINE}\n")
            .as_bytes(),
    );
    assert!(line.contains("body is not valid base64"), "{line}");
    let line = refused(format!("{original}{original}").as_bytes());
    assert!(line.contains("more than one"), "{line}");
    let line = refused(&vec![b'A'; 65 * 1024]);
    assert!(line.ends_with("larger than 65536 bytes"), "{line}");

    // A missing file.
    let missing = site.path("missing.lic");
    let line = fails(&mut site.activate(&missing));
    assert_names(&line, &missing);
    assert_eq!(site.snapshot(), before);

    // The good licence is still the active one.
    assert_eq!(site.active_serial(), 1);
    assert_eq!(site.status_json()["state"], "valid");

    // A damaged stored licence is not shown as valid.
    let stored = site.state.join("license/active.lic");
    std::fs::write(
        &stored,
        original.replace(&format!("Customer: {CUSTOMER}"), "Customer: Mallory"),
    )
    .unwrap();
    let line = fails(&mut site.status());
    assert_names(&line, &stored);
    assert!(line.contains("header Customer does not match"), "{line}");
}

// --- 4. node and cluster binding ------------------------------------------

#[test]
fn licence_works_on_its_node_and_cluster_only() {
    let site = Site::new();
    let node_b = host_root(&site.dir, "node-b", &format!("{MACHINE_B}\n"));

    // Issued for node A, activated on node B.
    let lic = site.issue(&site.request("request-a.json", None), "a.lic", &[]);
    let line = fails(&mut site.activate_on(&node_b, &lic));
    assert_names(&line, &lic);
    assert!(
        line.ends_with("licence is for another node (machine fingerprint differs)"),
        "{line}"
    );
    assert!(!site.state.join("license/active.json").exists());

    // The machine id is read case-insensitively, via the dbus fallback too.
    let upper = host_root(&site.dir, "node-a-upper", &MACHINE_A.to_uppercase());
    let dbus = site.path("node-a-dbus");
    std::fs::create_dir_all(dbus.join("etc")).unwrap();
    std::fs::write(dbus.join("etc/machine-id"), "\n").unwrap();
    std::fs::create_dir_all(dbus.join("var/lib/dbus")).unwrap();
    std::fs::write(dbus.join("var/lib/dbus/machine-id"), MACHINE_A).unwrap();
    for host in [&upper, &dbus] {
        let mut c = site.install_on(host);
        c.args(["license", "status", "--trust"]).arg(&site.public);
        // No licence yet: the command fails, but not for the machine id.
        let line = fails(&mut c);
        assert!(line.contains("no licence is active"), "{line}");
    }
    ok(&mut site.activate_on(&upper, &lic));
    ok(&mut site.activate_on(&dbus, &lic));

    // Nodes without a usable machine id cannot request anything.
    let none = site.path("node-none");
    std::fs::create_dir_all(&none).unwrap();
    let bogus = host_root(&site.dir, "node-bogus", "uninitialized\n");
    for (host, expect) in [
        (&none, "no machine id"),
        (&bogus, "not a machine id: expected 32 hex digits"),
    ] {
        let mut c = site.install_on(host);
        c.args(["license", "request", "--out"])
            .arg(site.path("never.json"));
        let line = fails(&mut c);
        assert_names(&line, &host.join("etc/machine-id"));
        assert!(line.contains(expect), "{line}");
    }
    assert!(!site.path("never.json").exists());

    // Bound to the cluster as well.
    let request = site.request("request-cluster.json", Some(CLUSTER_UID));
    let bound = site.issue(&request, "cluster.lic", &[]);
    let before = site.snapshot();
    let line = fails(&mut site.activate(&bound));
    assert_names(&line, &bound);
    assert!(
        line.contains("licence is bound to a Kubernetes cluster, but no cluster UID was given")
            && line.contains("pass --cluster-uid"),
        "{line}"
    );
    let line = fails(
        site.activate(&bound)
            .args(["--cluster-uid", "11111111-2222-3333-4444-555555555555"]),
    );
    assert_names(&line, &bound);
    assert!(
        line.ends_with("licence is for another node (cluster fingerprint differs)"),
        "{line}"
    );
    let line = fails(site.activate(&bound).args(["--cluster-uid", "not-a-uuid"]));
    assert!(
        line.starts_with("error: cluster UID: expected a UUID"),
        "{line}"
    );
    assert_eq!(site.snapshot(), before);

    // The right UID, in upper case: the same UID.
    let out = ok(site
        .activate(&bound)
        .args(["--cluster-uid", &CLUSTER_UID.to_uppercase()]));
    assert!(
        out.starts_with("activated: serial 2 (replaces serial 1)"),
        "{out}"
    );

    // Status needs the UID as well.
    let line = fails(&mut site.status());
    assert!(
        line.starts_with("error: the licence is not valid: ") && line.contains("no cluster UID"),
        "{line}"
    );
    let s = json(&ok(site.status().args([
        "--json",
        "--cluster-uid",
        CLUSTER_UID,
    ])));
    assert_eq!(s["state"], "valid", "{s}");
    assert_eq!(s["serial"], 2, "{s}");
}

// --- 5. vendor keys ----------------------------------------------------------

#[test]
fn untrusted_vendor_key_is_refused_by_id() {
    let site = Site::new();
    let lic = site.issue(&site.request("request.json", None), "site.lic", &[]);
    let (_, other) = keygen(&site.dir, "other");
    let vendor_id = PublicKey::from_file(&site.public)
        .unwrap()
        .key_id
        .to_string();
    let other_id = PublicKey::from_file(&other).unwrap().key_id.to_string();

    let mut c = site.install();
    c.args(["license", "activate"])
        .arg(&lic)
        .arg("--trust")
        .arg(&other);
    let line = fails(&mut c);
    assert_names(&line, &lic);
    assert!(
        line.ends_with(&format!(
            "signed by unknown key {vendor_id} (trusted: {other_id})"
        )),
        "{line}"
    );

    // No key at all.
    let mut c = site.install();
    c.args(["license", "activate"]).arg(&lic);
    let line = fails(&mut c);
    assert!(line.contains("no trusted keys"), "{line}");
    assert!(!site.state.join("license/active.json").exists());

    // Among other keys, the vendor's is found.
    let mut c = site.install();
    c.args(["license", "activate"])
        .arg(&lic)
        .arg("--trust")
        .arg(&other)
        .arg("--trust")
        .arg(&site.public);
    ok(&mut c);
    assert_eq!(site.active_serial(), 1);

    // Status with only the other key: the stored licence is not trusted.
    let mut c = site.install();
    c.args(["license", "status", "--trust"]).arg(&other);
    let line = fails(&mut c);
    assert!(
        line.contains(&format!("signed by unknown key {vendor_id}")),
        "{line}"
    );
}

// --- 6. clock set back -------------------------------------------------------

#[test]
fn clock_set_back_is_refused() {
    let site = Site::new();
    let first = site.issue(&site.request("request-1.json", None), "serial-1.lic", &[]);
    let renewal = site.issue(&site.request("request-2.json", None), "serial-2.lic", &[]);
    ok(&mut site.activate(&first));

    // The installer has seen a time one day ahead: the clock has since
    // been set back a day.
    let clock = site.state.join("clock.json");
    let ahead = utc(OffsetDateTime::now_utc() + Duration::days(1));
    std::fs::write(&clock, format!("{{\"lastSeen\": \"{ahead}\"}}\n")).unwrap();
    let before = site.snapshot();

    let line = fails(&mut site.status());
    assert!(
        line.starts_with("error: the licence is not valid: ")
            && line.contains("system clock set back"),
        "{line}"
    );
    assert!(
        line.contains(&format!("last time seen ({ahead})")),
        "{line}"
    );
    let s = json(&String::from_utf8_lossy(
        &run(site.status().arg("--json")).stdout,
    ));
    assert_eq!(s["state"], "invalid", "{s}");
    assert!(s["problem"].as_str().unwrap().contains("set back"), "{s}");

    let line = fails(&mut site.activate(&renewal));
    assert_names(&line, &renewal);
    assert!(
        line.contains("system clock set back") && line.contains("correct the clock"),
        "{line}"
    );
    // Nothing moved: neither the licence nor the watermark.
    assert_eq!(site.snapshot(), before);
    assert_eq!(site.active_serial(), 1);

    // Within the allowed drift (5 minutes) the clock is fine.
    let near = utc(OffsetDateTime::now_utc() + Duration::minutes(2));
    std::fs::write(&clock, format!("{{\"lastSeen\": \"{near}\"}}\n")).unwrap();
    ok(&mut site.activate(&renewal));
    assert_eq!(site.active_serial(), 2);
    // The watermark never moves back.
    let stored = json(&read_text(&clock));
    assert_eq!(stored["lastSeen"], near, "{stored}");
}

// --- 7. not valid yet --------------------------------------------------------

#[test]
fn licence_not_valid_yet_is_refused() {
    let site = Site::new();
    let not_before = date_in(30);
    let lic = site.issue(
        &site.request("request.json", None),
        "later.lic",
        &["--not-before", &not_before],
    );
    let line = fails(&mut site.activate(&lic));
    assert_names(&line, &lic);
    assert!(
        line.ends_with(&format!("not valid before {not_before}T00:00:00Z")),
        "{line}"
    );
    assert!(!site.state.join("license/active.json").exists());

    // The issuer refuses a start after the end.
    let line = fails(&mut site.issue_cmd(
        &site.request("request-2.json", None),
        "never.lic",
        &["--not-before", &date_in(200)],
    ));
    assert!(line.contains("must be later than notBefore"), "{line}");
    assert!(!site.path("never.lic").exists());
}

// --- 8. algorithm allow-list --------------------------------------------------

#[test]
fn algorithm_off_the_allow_list_is_refused() {
    let site = Site::new();
    let lic = site.issue(&site.request("request.json", None), "site.lic", &[]);

    // The envelope says RSA (headers and everything else kept).
    let mut armor = Armor::parse(&read_text(&lic));
    assert_eq!(armor.envelope["alg"], "Ed25519");
    armor.envelope["alg"] = "RSA".into();
    let rsa = site.path("rsa.lic");
    std::fs::write(&rsa, armor.text()).unwrap();
    let line = fails(&mut site.activate(&rsa));
    assert_names(&line, &rsa);
    assert!(
        line.ends_with("algorithm \"RSA\" is not allowed (allowed: Ed25519)"),
        "{line}"
    );

    // "none", and an algorithm name that is no string at all.
    armor.envelope["alg"] = "none".into();
    std::fs::write(&rsa, armor.text()).unwrap();
    let line = fails(&mut site.activate(&rsa));
    assert!(line.contains("algorithm \"none\" is not allowed"), "{line}");
    armor.envelope["alg"] = 25519.into();
    std::fs::write(&rsa, armor.text()).unwrap();
    let line = fails(&mut site.activate(&rsa));
    assert!(line.contains("body is not a licence envelope"), "{line}");

    // A validly signed payload naming RSA under an Ed25519 envelope, and a
    // payload of a later format: refused after the signature check.
    let vendor = TestVendor::new(&site.dir);
    let request = Request::from_file(&site.path("request.json")).unwrap();
    let now = OffsetDateTime::now_utc();
    let payload = vendor.payload(&request, 1, now, now + Duration::days(30), 0);
    let mut value = serde_json::to_value(&payload).unwrap();
    value["alg"] = "RSA".into();
    let signed_rsa = site.path("signed-rsa.lic");
    std::fs::write(
        &signed_rsa,
        vendor.sign_bytes(&payload, &serde_json::to_vec(&value).unwrap()),
    )
    .unwrap();
    let mut c = site.install();
    c.args(["license", "activate"])
        .arg(&signed_rsa)
        .arg("--trust")
        .arg(&vendor.public);
    let line = fails(&mut c);
    assert_names(&line, &signed_rsa);
    assert!(
        line.ends_with("algorithm \"RSA\" is not allowed (allowed: Ed25519)"),
        "{line}"
    );

    value["alg"] = "Ed25519".into();
    value["format"] = 2.into();
    let format2 = site.path("format-2.lic");
    std::fs::write(
        &format2,
        vendor.sign_bytes(&payload, &serde_json::to_vec(&value).unwrap()),
    )
    .unwrap();
    let mut c = site.install();
    c.args(["license", "activate"])
        .arg(&format2)
        .arg("--trust")
        .arg(&vendor.public);
    let line = fails(&mut c);
    assert!(line.contains("unsupported licence format 2"), "{line}");
    assert!(!site.state.join("license/active.json").exists());
}

// --- 9. expiry, grace, and a clock behind the issue time ----------------------

#[test]
fn expired_grace_and_future_issue_time() {
    let site = Site::new();
    let request_path = site.request("request.json", None);

    // The issuer refuses a licence expired when issued: with a start date
    // in the past too, and with the default start (now).
    let line = fails(&mut site.issue_cmd(
        &request_path,
        "expired.lic",
        &["--expires", "2020-01-01", "--not-before", "2019-01-01"],
    ));
    assert!(
        line.starts_with(
            "error: licence terms: expires (2020-01-01T00:00:00Z) is not later than now ("
        ) && line.ends_with("): the licence would be expired when issued"),
        "{line}"
    );
    let line =
        fails(&mut site.issue_cmd(&request_path, "expired.lic", &["--expires", "2020-01-01"]));
    // With the default start (now), the message is about now too, not
    // about a start date the vendor never gave.
    assert!(
        line.starts_with("error: licence terms: expires (2020-01-01T00:00:00Z) ")
            && line.ends_with("the licence would be expired when issued"),
        "{line}"
    );
    assert!(!site.path("expired.lic").exists());
    // A refused licence costs no serial.
    assert!(
        !site.ledger.exists(),
        "a refused licence used a serial: {}",
        std::fs::read_to_string(&site.ledger).unwrap_or_default()
    );

    // So the test signs such licences itself, with a key the site trusts.
    let vendor = TestVendor::new(&site.dir);
    let request = Request::from_file(&request_path).unwrap();
    let now = OffsetDateTime::now_utc();
    let activate = |name: &str, payload: &LicensePayload| {
        let path = site.path(name);
        std::fs::write(&path, vendor.sign(payload)).unwrap();
        let mut c = site.install();
        c.args(["license", "activate"])
            .arg(&path)
            .arg("--trust")
            .arg(&vendor.public);
        (path, c)
    };

    // Expired 3 days ago, 14 days of grace: accepted, with a warning.
    let grace = vendor.payload(
        &request,
        1,
        now - Duration::days(40),
        now - Duration::days(3),
        14,
    );
    let (path, mut c) = activate("grace.lic", &grace);
    let out = run(c.arg("--json"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: expired on {}",
            path.display(),
            utc(grace.expires)
        )) && stderr.contains("grace period")
            && !stderr.contains("error:"),
        "{stderr}"
    );
    let a = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(a["license"]["state"], "grace", "{a}");
    assert_eq!(a["license"]["daysLeft"], 10, "{a}");
    let last = site.history().pop().unwrap();
    assert_eq!(last["outcome"], "warning", "{last}");

    let mut c = site.install();
    c.args(["license", "status", "--trust"]).arg(&vendor.public);
    let out = run(&mut c);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "Status:    EXPIRED on {}, in its grace period: 10 days left until {}",
            utc(grace.expires),
            utc(grace.grace_ends())
        )),
        "{stdout}"
    );
    assert!(stderr.contains("grace period"), "{stderr}");

    // Expired 20 days ago, 14 days of grace: over.
    let expired = vendor.payload(
        &request,
        2,
        now - Duration::days(60),
        now - Duration::days(20),
        14,
    );
    let (path, mut c) = activate("expired-20.lic", &expired);
    let line = fails(&mut c);
    assert_names(&line, &path);
    assert!(
        line.ends_with(&format!(
            "expired on {} (grace period of 14 days ended {})",
            utc(expired.expires),
            utc(expired.grace_ends())
        )),
        "{line}"
    );

    // Issued a day from now: the clock must be behind.
    let mut future = vendor.payload(
        &request,
        3,
        now + Duration::days(1),
        now + Duration::days(60),
        0,
    );
    future.not_before = airgap_licenses::utc::whole_seconds(now - Duration::days(1));
    let (path, mut c) = activate("future.lic", &future);
    let line = fails(&mut c);
    assert_names(&line, &path);
    assert!(
        line.contains("system clock is behind: it reads ")
            && line.ends_with(&format!(
                "before the licence was issued ({}); correct the clock",
                utc(future.issued_at)
            )),
        "{line}"
    );

    // The grace licence is still the active one.
    assert_eq!(site.active_serial(), 1);
}

// --- 10. a bundle carrying a licence -------------------------------------------

/// The demo manifest with absolute sources, plus `license: LICENCE`,
/// named for the product the licences of these tests are for.
fn manifest_with_license(dir: &Path, name: &str, license: &Path) -> PathBuf {
    let demo = repo_root().join("manifests/demo");
    // The demo's templates, with a profile for this product.
    let templates = dir.join(format!("{name}.templates"));
    airgap_e2e::demo_site::copy_dir(&demo.join("templates"), &templates);
    let profile = templates.join("profile.yaml");
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(
        &profile,
        text.replace("product: demo", "product: reference-platform")
            .replace("example: ../../site.example.yaml\n", ""),
    )
    .unwrap();
    let q = |p: String| serde_json::to_string(&p).unwrap();
    let text = format!(
        "name: reference-platform\nversion: 1.0.0\ndescription: The demo bundle with a licence.\nimages:\n  - source: {}\n  - source: {}\ncharts:\n  - source: {}\nfiles:\n  - source: {}\n    name: docs/README.md\n    kind: documentation\ntemplates:\n  - source: {}\nlicense: {}\n",
        q(format!("oci-layout:{}:demo/web:1.0.0", demo.join("images/web-oci").display())),
        q(format!(
            "docker-archive:{}:demo/worker:1.0.0",
            demo.join("images/worker-docker.tar").display()
        )),
        q(demo.join("charts/hello").display().to_string()),
        q(demo.join("files/README.md").display().to_string()),
        q(templates.display().to_string()),
        q(license.display().to_string()),
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bundle_carries_a_licence() {
    let site = Site::new();
    let lic = site.issue(&site.request("request.json", None), "site.lic", &[]);
    let manifest = manifest_with_license(&site.dir, "manifest.yaml", &lic);
    let bundle = site.path("licensed.bundle");
    ok(&mut build_cmd(&manifest, &site.key, &bundle));

    let report = json(&ok(Command::new(bin("airgap-install"))
        .args(["inspect", "--json"])
        .arg(&bundle)));
    // A licence needs version 4; the generated SBOMs, stored last, make it 6.
    assert_eq!(report["formatVersion"], 6, "{report}");

    let reader = ArchiveReader::open(&bundle, Limits::default()).unwrap();
    let (_, d) = reader.read_descriptor_unverified().unwrap();
    assert_eq!(d.format_version, 6);
    let entry = d.license.expect("bundle.json has a license entry");
    let bytes = std::fs::read(&lic).unwrap();
    assert_eq!(entry.size, bytes.len() as u64);
    assert_eq!(
        entry.digest.to_string(),
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    );
    assert!(
        d.blobs.iter().any(|b| b.digest == entry.digest),
        "the licence is stored as a blob"
    );
    ok(&mut verify_cmd(&bundle, &site.public));

    // A garbled licence file: the build fails naming the manifest field.
    let garbled = site.path("garbled.lic");
    let text = read_text(&lic);
    std::fs::write(&garbled, &text[..text.len() / 2]).unwrap();
    let manifest = manifest_with_license(&site.dir, "garbled.yaml", &garbled);
    let out = site.path("garbled.bundle");
    let line = fails(&mut build_cmd(&manifest, &site.key, &out));
    assert!(
        line.starts_with(&format!("error: {}:", manifest.display()))
            && line.contains(": license: ")
            && line.contains("truncated"),
        "{line}"
    );
    assert!(!out.exists());
    assert!(partial_files(&site.dir).is_empty());

    // A missing one as well.
    let manifest = manifest_with_license(&site.dir, "missing.yaml", &site.path("none.lic"));
    let line = fails(&mut build_cmd(&manifest, &site.key, &out));
    assert!(
        line.contains(": license: ") && line.contains("none.lic"),
        "{line}"
    );
}
