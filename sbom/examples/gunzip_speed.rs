//! Times the layer scanner's gzip decoder against flate2 (miniz_oxide) on
//! the same files, interleaved, and prints the median of each and their
//! ratio. With `--features isal` the scanner's decoder is Intel ISA-L:
//!
//! ```sh
//! cargo run --release -p airgap-sbom --features isal --example gunzip_speed -- LAYER.tar.gz...
//! ```
use std::io::Read;
use std::time::Instant;

/// Seconds to decompress every file once with `open`'s decoder.
fn time(files: &[String], open: &dyn Fn(std::fs::File) -> Box<dyn Read + Send>) -> f64 {
    let mut buf = vec![0u8; 1 << 20];
    let started = Instant::now();
    for path in files {
        let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut r = open(f);
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => panic!("{path}: {e}"),
            }
        }
    }
    started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: gunzip_speed FILE.gz...");
        std::process::exit(2);
    }
    let runs = 5;
    let (mut reference, mut ours) = (Vec::new(), Vec::new());
    // One untimed pass of each warms the page cache.
    for i in 0..=runs {
        let a = time(&files, &|f| {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                f,
            )))
        });
        let b = time(&files, &|f| airgap_sbom::gunzip::decoder(Box::new(f)));
        if i > 0 {
            reference.push(a);
            ours.push(b);
        }
    }
    let (a, b) = (median(reference), median(ours));
    println!(
        "flate2 {a:.3} s, {} {b:.3} s: {:.2}x flate2's speed (median of {runs})",
        airgap_sbom::gunzip::NAME,
        a / b
    );
}
