#![no_main]
//! The template renderer with hostile templates: what `airgap-install
//! render` does with a bundle's `.hbs` templates, on a thread with the
//! render stack ([`on_render_thread`]).
//!
//! The input is UTF-8 text split at NUL bytes into a main template (`main`)
//! and up to seven partials (`p1` … `p7`, included as `{{> p1}}`). Each is
//! checked and compiled ([`Templates::register`]: nesting before parsing),
//! the set is analysed (partial graph, loops, worst-case steps), then
//! `main` is drawn like a release's values: with the example site's data
//! (stand-ins for its secrets), for the control plane and for a workspace,
//! kept and as a probe, within a budget of time and output.
//!
//! The limits are the product's except time, output and steps, lowered so
//! that one execution stays far below libFuzzer's 20 s timeout; an
//! execution that still runs long, or allocates past the RSS limit, is a
//! bound that does not hold.
//!
//! Seeds (`fuzz/seeds/render/`): the reference and demo templates, alone
//! and with parts of them as partials.

use std::sync::LazyLock;
use std::time::Duration;

use airgap_install::render::helpers::KnownImage;
use airgap_install::render::limits::RenderLimits;
use airgap_install::render::{
    on_render_thread, release_context, site_data, stand_in_secret, ForEachItem, Templates,
};
use airgap_install::site::SiteFile;
use airgap_install::profile::BundleProfile;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

struct Fixture {
    site: Value,
    bundle: Value,
    images: Vec<KnownImage>,
    namespace: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let reference = BundleProfile::from_texts(
        include_str!("../../templates/profile.yaml"),
        include_str!("../../templates/site.schema.json"),
    )
    .expect("the reference profile");
    let site = SiteFile::from_text(
        std::path::Path::new("site.yaml"),
        include_str!("../../manifests/site.example.yaml").into(),
        Some(&reference),
    )
    .expect("the example site");
    let images = [
        "vendor/control-plane",
        "vendor/workspace-server",
        "vendor/dashboard",
    ];
    let digest = format!("sha256:{}", "ab".repeat(32));
    Fixture {
        site: site_data(&site, |n, _, _| Ok(stand_in_secret(n))).expect("site data"),
        bundle: {
            let images: Vec<Value> = images
                .iter()
                .map(|i| json!({"name": i, "tag": "1.4.0", "reference": format!("{i}:1.4.0"), "digest": digest}))
                .collect();
            let charts: Vec<Value> = ["control-plane", "workspace-server", "dashboard"]
                .iter()
                .map(|c| json!({"name": c, "version": "1.4.0"}))
                .collect();
            json!({
                "name": "reference-platform",
                "version": "1.4.0",
                "digest": digest,
                "images": images,
                "charts": charts,
            })
        },
        images: images
            .iter()
            .map(|i| KnownImage {
                name: i.to_string(),
                tag: "1.4.0".into(),
                pinned: format!("registry.internal.example:5000/platform/{i}@{digest}"),
            })
            .collect(),
        namespace: site.namespace().expect("a namespace").to_string(),
    }
});

/// The product's limits, with time, output and steps lowered for fuzzing.
fn limits() -> RenderLimits {
    RenderLimits {
        max_steps: 1_000_000,
        max_file_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        max_time: Duration::from_secs(2),
        ..RenderLimits::default()
    }
}

fn render(parts: &[&str]) {
    let f = &*FIXTURE;
    let limits = limits();
    let mut templates = Templates::new(&f.images, limits.clone());
    for (i, part) in parts.iter().enumerate() {
        let name = if i == 0 {
            "main".to_string()
        } else {
            format!("p{i}")
        };
        if let Err(e) = templates.register(&name, part.to_string()) {
            assert!(!e.contains('\n'), "{e:?}");
            return;
        }
    }
    let renderer = match templates.analyse() {
        Ok(r) => r,
        Err(e) => return assert!(!e.contains('\n'), "{e:?}"),
    };
    let each = ForEachItem {
        list: "workspaces",
        index: 0,
        name: "workspace",
    };
    for scope in [None, Some(&each)] {
        let ctx = release_context(
            &f.site,
            &f.bundle,
            "",
            &f.namespace,
            ("workspace-server", "1.4.0"),
            scope,
        );
        for counted in [true, false] {
            match renderer.draw("main", &ctx, counted) {
                Ok(out) => assert!(out.len() <= limits.max_file_bytes),
                Err(e) => assert!(!e.contains('\n'), "{e:?}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts: Vec<&str> = text.splitn(8, '\0').collect();
    on_render_thread(|| render(&parts)).expect("the render thread");
});
