//! MD5 compression speed of the candidates, on one buffer in memory (no I/O), so the choice
//! in src/digest/md5_asm.rs rests on numbers: `md5_bench [MIB]` prints MB/s of each, best of 5.
//! bench/hash.sh prints `openssl speed` beside it.

use std::time::Instant;

use md5::Digest as _;

fn main() {
    let mib: usize = std::env::args().nth(1).map(|a| a.parse().expect("MiB")).unwrap_or(256);
    let data: Vec<u8> = (0..mib << 20).map(|i| (i * 31 % 251) as u8).collect();
    let rate = |f: &dyn Fn() -> [u8; 16]| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                data.len() as f64 / 1e6 / t.elapsed().as_secs_f64()
            })
            .fold(0.0, f64::max)
    };
    let rust = rate(&|| md5::Md5::digest(&data).into());
    let aws_lc = rate(&|| {
        let mut h = taskyard_runner::digest::Md5::new();
        for part in data.chunks(1 << 20) {
            h.update(part);
        }
        h.finalize()
    });
    println!("md-5 (pure Rust)      {rust:8.0} MB/s");
    println!("AWS-LC MD5 (assembly) {aws_lc:8.0} MB/s");
}
