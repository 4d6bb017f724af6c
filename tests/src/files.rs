//! Fixture files and digests computed by an independent implementation (coreutils).

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Writes `size` bytes of deterministic pseudo-random data (xorshift), streamed.
pub fn write_pattern(path: &Path, size: u64, seed: u64) {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut state = seed | 1;
    let mut left = size;
    let mut block = [0u8; 8];
    while left > 0 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        block.copy_from_slice(&state.to_le_bytes());
        let n = left.min(8) as usize;
        out.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
}

/// The digest of a file by coreutils' `<algorithm>sum`, not by the code under test.
pub fn coreutils_digest(algorithm: &str, path: &Path) -> String {
    let out = Command::new(format!("{algorithm}sum"))
        .arg(path)
        .output()
        .expect("coreutils is installed");
    assert!(
        out.status.success(),
        "{algorithm}sum failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
