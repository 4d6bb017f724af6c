//! MD5 through AWS-LC's x86-64 assembly. AWS-LC is the TLS library the runner links (statically)
//! already, so this adds nothing to the image; the pure-Rust md-5 crate, which has no assembly
//! backend any more, hashes 15-20 % slower here, and the `openssl` crate would run the same
//! assembly but ship libssl and libcrypto in the image.

use std::mem::MaybeUninit;

use aws_lc_sys::{MD5_CTX, MD5_Final, MD5_Init, MD5_Update};

pub struct Md5(MD5_CTX);

// The context is plain data (four words of state, counters, one block of input).
unsafe impl Send for Md5 {}

impl Md5 {
    pub fn new() -> Self {
        let mut ctx = MaybeUninit::<MD5_CTX>::uninit();
        // SAFETY: MD5_Init initialises every field of the context and cannot fail.
        unsafe {
            MD5_Init(ctx.as_mut_ptr());
            Self(ctx.assume_init())
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: the pointer and length describe one live slice.
        unsafe { MD5_Update(&mut self.0, data.as_ptr().cast(), data.len()) };
    }

    pub fn finalize(mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: `out` has the 16 bytes MD5_Final writes.
        unsafe { MD5_Final(out.as_mut_ptr(), &mut self.0) };
        out
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_pure_rust_md5_across_updates() {
        use ::md5::Digest as _;
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut ours = Md5::new();
        for part in data.chunks(65_537) {
            ours.update(part);
        }
        assert_eq!(ours.finalize().as_slice(), ::md5::Md5::digest(&data).as_slice());
        assert_eq!(hex::encode(Md5::new().finalize()), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
