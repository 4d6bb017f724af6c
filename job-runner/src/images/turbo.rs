//! JPEG through libjpeg-turbo (vendored, built static with its SIMD code): decoding scaled
//! in the DCT to 1/2, 1/4 or 1/8, and encoding. It decodes baseline and progressive JPEGs
//! several times faster than jpeg-decoder; anything it refuses (CMYK, a warning about damaged
//! data) goes to the jpeg-decoder path the caller keeps, so what was accepted stays accepted.

use image::DynamicImage;
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

/// Progressive scans allowed in one image: real photos have about ten; a crafted file with
/// thousands makes any decoder loop over the whole coefficient buffer for each.
const SCAN_LIMIT: u32 = 500;

/// The largest DCT scale denominator (1, 2, 4 or 8) that keeps at least `need` pixels on
/// each axis of a `size` image (libjpeg-turbo rounds scaled sizes up).
pub fn denominator(size: (u32, u32), need: (u32, u32)) -> u32 {
    [8, 4, 2]
        .into_iter()
        .find(|d| size.0.div_ceil(*d) >= need.0 && size.1.div_ceil(*d) >= need.1)
        .unwrap_or(1)
}

/// Decodes a JPEG whose header says `size`, scaled down by 1/`denominator`, to 8-bit RGB (or
/// grey); at 1/8 a progressive one without the scans that cannot show (`scans`). Fails
/// when libjpeg-turbo reads another size than the runner's own header parser (whose size
/// the pixel limit and the memory budget were checked against).
pub fn decode(bytes: &[u8], size: (u32, u32), denominator: u32) -> Result<DynamicImage, String> {
    let failed = |e: turbojpeg::Error| format!("libjpeg-turbo: {e}");
    let pruned = if denominator == 8 {
        super::scans::for_eighth_scale(bytes)
    } else {
        None
    };
    let bytes = pruned.as_deref().unwrap_or(bytes);
    let mut d = Decompressor::new().map_err(failed)?;
    d.set_scan_limit(SCAN_LIMIT).map_err(failed)?;
    let header = d.read_header(bytes).map_err(failed)?;
    if (header.width, header.height) != (size.0 as usize, size.1 as usize) {
        return Err(format!(
            "libjpeg-turbo reads a {}x{} image where the header says {}x{}",
            header.width, header.height, size.0, size.1
        ));
    }
    let (format, grey) = match header.colorspace {
        Colorspace::Gray => (PixelFormat::GRAY, true),
        Colorspace::RGB | Colorspace::YCbCr => (PixelFormat::RGB, false),
        other => return Err(format!("libjpeg-turbo does not turn {other:?} into RGB")),
    };
    let factor = ScalingFactor::new(1, denominator as usize);
    d.set_scaling_factor(factor).map_err(failed)?;
    let scaled = header.scaled(factor);
    let (w, h) = (scaled.width, scaled.height);
    let pitch = w * format.size();
    let mut pixels = vec![0u8; pitch * h];
    d.decompress(
        bytes,
        Image {
            pixels: pixels.as_mut_slice(),
            width: w,
            pitch,
            height: h,
            format,
        },
    )
    .map_err(failed)?;
    let (w, h) = (w as u32, h as u32);
    let bad = || "libjpeg-turbo gave a buffer of the wrong size".to_string();
    Ok(if grey {
        DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).ok_or_else(bad)?)
    } else {
        DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels).ok_or_else(bad)?)
    })
}

/// Encodes 8-bit RGB as a baseline JPEG, chroma subsampled 4:2:0 as Pillow and libvips do.
pub fn encode_rgb(rgb: &[u8], (w, h): (u32, u32), quality: u8) -> Result<Vec<u8>, String> {
    let failed = |e: turbojpeg::Error| format!("libjpeg-turbo: {e}");
    let mut c = Compressor::new().map_err(failed)?;
    c.set_quality(quality.clamp(1, 100) as i32).map_err(failed)?;
    c.set_subsamp(Subsamp::Sub2x2).map_err(failed)?;
    let (w, h) = (w as usize, h as usize);
    c.compress_to_vec(Image {
        pixels: rgb,
        width: w,
        pitch: w * 3,
        height: h,
        format: PixelFormat::RGB,
    })
    .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise, so that the JPEG is not trivially small; `progressive` as a camera or an
    /// optimiser writes it.
    fn jpeg(w: u32, h: u32, progressive: bool) -> Vec<u8> {
        let mut seed = 11u32;
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect();
        let mut c = Compressor::new().unwrap();
        c.set_quality(85).unwrap();
        c.set_progressive(progressive).unwrap();
        c.compress_to_vec(Image {
            pixels: rgb.as_slice(),
            width: w as usize,
            pitch: w as usize * 3,
            height: h as usize,
            format: PixelFormat::RGB,
        })
        .unwrap()
    }

    #[test]
    fn keeps_at_least_what_the_resize_needs() {
        assert_eq!(denominator((4000, 3000), (512, 384)), 4);
        assert_eq!(denominator((4000, 3000), (500, 375)), 8);
        assert_eq!(denominator((4000, 3000), (4000, 3000)), 1);
        // Rounded up: 1001/8 is 126 pixels.
        assert_eq!(denominator((1001, 1001), (126, 126)), 8);
        assert_eq!(denominator((1001, 1001), (127, 126)), 4);
    }

    #[test]
    fn progressive_and_baseline_decode_scaled_in_the_dct() {
        for progressive in [false, true] {
            let bytes = jpeg(1000, 600, progressive);
            let img = decode(&bytes, (1000, 600), 8).unwrap();
            assert_eq!((img.width(), img.height()), (125, 75), "progressive: {progressive}");
            let img = decode(&bytes, (1000, 600), 2).unwrap();
            assert_eq!((img.width(), img.height()), (500, 300), "progressive: {progressive}");
            assert!(img.as_rgb8().is_some());
        }
    }

    #[test]
    fn refuses_a_size_other_than_the_checked_one_and_damage() {
        let bytes = jpeg(64, 48, true);
        assert!(decode(&bytes, (64, 40), 1).unwrap_err().contains("64x48"));
        assert!(decode(&bytes[..bytes.len() / 2], (64, 48), 1).is_err());
    }

    #[test]
    fn encodes_what_decodes_back() {
        let rgb = vec![128u8; 40 * 30 * 3];
        let out = encode_rgb(&rgb, (40, 30), 85).unwrap();
        let back = decode(&out, (40, 30), 1).unwrap();
        assert_eq!((back.width(), back.height()), (40, 30));
    }
}
