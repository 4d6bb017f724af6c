//! Resize throughput of the runner's image pipeline (decode, EXIF orientation, Lanczos3
//! resize, JPEG q85 encode), in source megapixels per second.
//!
//!   resize_bench SIZE WORKERS PHOTO...
//!
//! SIZE is `256` (fit inside 256x256, aspect kept) or `100x100` (exactly 100x100). Each of
//! WORKERS threads processes every photo once, all at the same time, as the runner does
//! with the images of a page. Prints one line: `taskyard <MP/s>`. bench/resize.sh runs it
//! beside Pillow, alternating rounds.

use std::time::Instant;

use taskyard_api::{Fit, OutputFormat, Resize};
use taskyard_runner::images::format::sniff;
use taskyard_runner::images::resize::{dimensions, process};

fn main() {
    // As the runner does.
    taskyard_runner::allocator::tune_for_images();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: resize_bench SIZE WORKERS PHOTO...");
        std::process::exit(2);
    }
    let (width, height, fit) = match args[1].split_once('x') {
        Some((w, h)) => (w.parse().expect("a width"), h.parse().expect("a height"), Fit::Fill),
        None => {
            let side = args[1].parse().expect("SIZE is a number or WxH");
            (side, side, Fit::Contain)
        }
    };
    let workers: usize = args[2].parse().expect("WORKERS is a number");
    let resize = Resize {
        width,
        height,
        fit,
        format: OutputFormat::Jpeg,
        quality: 85,
    };
    // Read before timing, as the Pillow script does.
    let photos: Vec<Vec<u8>> = args[3..]
        .iter()
        .map(|p| std::fs::read(p).expect("readable photo"))
        .collect();
    let megapixels: f64 = photos
        .iter()
        .map(|b| {
            let (w, h) = dimensions(b, sniff(b).expect("a photo")).expect("a header");
            w as f64 * h as f64 / 1e6
        })
        .sum();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                for bytes in &photos {
                    let out = process(bytes, sniff(bytes).expect("a photo"), Some(&resize)).expect("processed");
                    std::hint::black_box(out.variant.expect("a variant").bytes.len());
                }
            });
        }
    });
    println!(
        "taskyard {:.1}",
        workers as f64 * megapixels / started.elapsed().as_secs_f64()
    );
}
