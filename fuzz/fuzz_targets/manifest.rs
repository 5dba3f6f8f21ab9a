#![no_main]
//! The bundler's manifest parser on arbitrary text: the YAML schema
//! (`Manifest::parse`) and everything it validates (names, versions,
//! image sources and references, platform filters, chart sources,
//! registries, file names and media types), then what the build asks of a
//! parsed manifest. The same parsers also get the whole input directly,
//! so they are fuzzed beyond what a valid YAML string reaches. Every
//! refusal must be one line.
use std::path::Path;

use airgap_bundle::manifest::Manifest;
use airgap_bundle::sources::reference::ImageReference;
use airgap_bundle::chart_source::ChartSource;
use airgap_bundle::sources::{split_reference, ImageSource, PlatformFilter};
use airgap_fuzz::assert_one_line;
use libfuzzer_sys::fuzz_target;

fn pieces(text: &str) {
    if let Err(e) = ImageSource::parse(text) {
        assert_one_line("ImageSource::parse", &e);
    }
    if let Err(e) = ImageReference::parse(text) {
        assert_one_line("ImageReference::parse", &e);
    }
    if let Err(e) = PlatformFilter::parse(text) {
        assert_one_line("PlatformFilter::parse", &e);
    }
    let _ = split_reference(text);
    // A chart source with the chart name and version on the next lines.
    let mut lines = text.splitn(3, '\n');
    let source = lines.next().unwrap_or_default();
    let (chart, version) = (lines.next(), lines.next());
    if let Err(e) = ChartSource::parse(source, chart, version) {
        assert_one_line("ChartSource::parse", &e);
    }
}

fuzz_target!(|data: &[u8]| {
    // `Manifest::load` refuses text that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    pieces(text);
    let m = match Manifest::parse(text, Path::new("fuzz.yaml")) {
        Ok(m) => m,
        Err(e) => {
            assert_one_line("Manifest::parse", &e.to_string());
            return;
        }
    };
    // What the build does with a manifest before it reads any source.
    let _ = m.has_remote_sources();
    let _ = m.host_settings();
    for img in &m.doc.images {
        let source = ImageSource::parse(&img.source.value).expect("validated");
        if let ImageSource::Registry(r) = &source {
            let _ = (r.api_host(), r.manifest_reference(), r.to_string());
        }
        img.platform_filters().expect("validated");
        for sbom in img.sboms.iter().flatten() {
            if let Some(p) = &sbom.platform {
                if let Err(e) = PlatformFilter::parse(&p.value) {
                    assert_one_line("sboms platform", &e);
                }
            }
            let _ = m.resolve(&sbom.source.value);
        }
        let _ = m.error_at(&img.source, "x").to_string();
    }
    for c in &m.doc.charts {
        let parsed = c.parsed().expect("validated");
        let _ = parsed.is_remote();
    }
    for f in &m.doc.files {
        let _ = m.resolve(&f.source.value);
    }
});
