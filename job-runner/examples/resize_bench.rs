//! Resize throughput of the runner's image pipeline (decode, EXIF orientation, Lanczos3
//! resize, JPEG q85 encode), in source megapixels per second, single-threaded.
//!
//!   resize_bench MAX_SIDE ROUNDS PHOTO...
//!
//! Prints one line: `taskyard <MP/s best> <MP/s median>`. bench/resize.sh runs it beside Pillow.

use std::time::Instant;

use taskyard_api::{Fit, OutputFormat, Resize};
use taskyard_runner::images::format::sniff;
use taskyard_runner::images::resize::{dimensions, process};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: resize_bench MAX_SIDE ROUNDS PHOTO...");
        std::process::exit(2);
    }
    let side: u32 = args[1].parse().expect("MAX_SIDE is a number");
    let rounds: usize = args[2].parse().expect("ROUNDS is a number");
    let resize = Resize {
        width: side,
        height: side,
        fit: Fit::Contain,
        format: OutputFormat::Jpeg,
        quality: 85,
    };
    let mut rates = Vec::new();
    for _ in 0..rounds {
        let mut megapixels = 0.0;
        let started = Instant::now();
        for path in &args[3..] {
            let bytes = std::fs::read(path).expect("readable photo");
            let format = sniff(&bytes).expect("a photo");
            let (w, h) = dimensions(&bytes, format).expect("a header");
            let out = process(&bytes, format, Some(&resize)).expect("processed");
            std::hint::black_box(out.variant.expect("a variant").bytes.len());
            megapixels += (w as f64 * h as f64) / 1e6;
        }
        rates.push(megapixels / started.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| b.partial_cmp(a).unwrap());
    println!("taskyard {:.1} {:.1}", rates[0], rates[rates.len() / 2]);
}
