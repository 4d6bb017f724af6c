//! Decoding within a memory bound. Without a resize an image is only checked (every row
//! decoded, few kept); with one, it is decoded to the smallest buffer the resize can use:
//! JPEG scaled in the DCT (libjpeg-turbo, or jpeg-decoder for what it refuses), PNG shrunk
//! row by row with a box filter and stripped to 8 bits.
//! `work_bytes` says, before anything is decoded, how much memory the chosen path takes.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use taskyard_api::Resize;

use super::frames::Geometry;
use super::resize::{decode_jpeg_scaled, shrink_target, swaps_axes, target_size};
use super::turbo;

/// Rows or chunks decoded at a time when only checking an image.
const CHUNK: usize = 64 << 10;

/// Checks that the whole image decodes, holding only a few rows of it (a JPEG at 1/8 scale).
pub fn validate(bytes: &[u8], format: ImageFormat, g: &Geometry) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("cannot decode the image: {e}");
    match format {
        ImageFormat::Png => {
            let mut reader = png_reader(bytes)?;
            while reader.next_row().map_err(|e| failed(&e))?.is_some() {}
            Ok(())
        }
        ImageFormat::Gif => validate_gif(bytes),
        ImageFormat::Jpeg if turbo::decode(bytes, (g.width, g.height), 8).is_ok() => Ok(()),
        ImageFormat::Jpeg => {
            let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
            decoder.read_info().map_err(|e| failed(&e))?;
            decoder.scale(1, 1).map_err(|e| failed(&e))?;
            decoder.decode().map(drop).map_err(|e| failed(&e))
        }
        _ => full(bytes, format).map(drop),
    }
}

fn validate_gif(bytes: &[u8]) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("cannot decode the image: {e}");
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(Cursor::new(bytes)).map_err(|e| failed(&e))?;
    // The first frame is the one stored and measured, as the image crate decodes it; later
    // frames are not decoded (their headers were checked against the pixel limit), so a
    // GIF of many large frames costs no more time than one.
    let Some(frame) = decoder.next_frame_info().map_err(|e| failed(&e))? else {
        return Err("cannot decode the image: the GIF has no frame".into());
    };
    let pixels = frame.width as usize * frame.height as usize;
    let mut chunk = vec![0u8; CHUNK];
    let mut filled = 0;
    while filled + CHUNK <= pixels && decoder.fill_buffer(&mut chunk).map_err(|e| failed(&e))? {
        filled += CHUNK;
    }
    if filled + CHUNK <= pixels {
        return Err("cannot decode the image: a GIF frame is truncated".into());
    }
    let rest = pixels - filled;
    // An even-sized buffer, as the decoder asks; a pixel short when `rest` is odd.
    let mut tail = vec![0u8; rest & !1];
    if !tail.is_empty() && !decoder.fill_buffer(&mut tail).map_err(|e| failed(&e))? {
        return Err("cannot decode the image: a GIF frame is truncated".into());
    }
    Ok(())
}

fn png_reader(bytes: &[u8]) -> Result<png::Reader<Cursor<&[u8]>>, String> {
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: 16 << 20 });
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    decoder.read_info().map_err(|e| format!("cannot decode the image: {e}"))
}

/// The whole first frame through the image crate.
fn full(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, String> {
    let decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(|e| format!("cannot decode the image: {e}"))?;
    DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode the image: {e}"))
}

/// The EXIF orientation, from the header.
pub fn orientation(bytes: &[u8], format: ImageFormat) -> image::metadata::Orientation {
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .ok()
        .and_then(|mut d| d.orientation().ok())
        .unwrap_or(image::metadata::Orientation::NoTransforms)
}

/// The integer factor a PNG of `size` may be shrunk by on load for resize `r`: at least
/// twice the pixels the resize needs stay on each axis, as for JPEG.
fn png_shrink(size: (u32, u32), upright_swapped: bool, r: &Resize) -> u32 {
    let (w, h) = size;
    let upright = if upright_swapped { (h, w) } else { (w, h) };
    let out = target_size(upright, r.fit, r.width, r.height);
    let (ow, oh) = if upright_swapped { (out.1, out.0) } else { out };
    // Cover crops, so the box's larger scale decides.
    let k = (w / (2 * ow.max(1))).min(h / (2 * oh.max(1)));
    k.max(1)
}

/// Decodes for resize `r`, upright, to the smallest useful 8-bit RGB or RGBA buffer.
pub fn decode_for_resize(bytes: &[u8], format: ImageFormat, g: &Geometry, r: &Resize) -> Result<DynamicImage, String> {
    let orientation = orientation(bytes, format);
    let mut img = match format {
        ImageFormat::Jpeg => {
            let size = (g.width, g.height);
            let need = shrink_target(size, orientation, r);
            match turbo::decode(bytes, size, turbo::denominator(size, need)) {
                Ok(img) => img,
                Err(_) => match decode_jpeg_scaled(bytes, size, need) {
                    Some(img) => img,
                    None => full(bytes, format)?,
                },
            }
        }
        ImageFormat::Png => {
            let k = png_shrink((g.width, g.height), swaps_axes(orientation), r);
            decode_png_shrunk(bytes, k)?
        }
        _ => full(bytes, format)?,
    };
    img.apply_orientation(orientation);
    Ok(img)
}

/// A PNG decoded row by row, 16-bit samples stripped to 8, grey expanded to RGB, and each
/// `k`x`k` block averaged into one pixel.
fn decode_png_shrunk(bytes: &[u8], k: u32) -> Result<DynamicImage, String> {
    let mut reader = png_reader(bytes)?;
    let info = reader.info();
    let (w, h) = (info.width, info.height);
    let interlaced = info.interlaced;
    let (color, _) = reader.output_color_type();
    let in_channels = color.samples();
    let alpha = matches!(color, png::ColorType::Rgba | png::ColorType::GrayscaleAlpha);
    let out_channels = if alpha { 4 } else { 3 };
    let failed = |e: &dyn std::fmt::Display| format!("cannot decode the image: {e}");
    let widen = |src: &[u8], dst: &mut [u8]| {
        for (s, d) in src.chunks_exact(in_channels).zip(dst.chunks_exact_mut(out_channels)) {
            match in_channels {
                1 => d.copy_from_slice(&[s[0], s[0], s[0]]),
                2 => d.copy_from_slice(&[s[0], s[0], s[0], s[1]]),
                _ => d.copy_from_slice(&s[..out_channels]),
            }
        }
    };
    let row_len = w as usize * out_channels;
    if interlaced || k == 1 {
        // Adam7 rows arrive pass by pass: the whole image is decoded, then converted.
        let mut raw = vec![0u8; reader.output_buffer_size().ok_or("the PNG is too large to decode")?];
        reader.next_frame(&mut raw).map_err(|e| failed(&e))?;
        let out = if in_channels == out_channels {
            raw
        } else {
            let mut out = vec![0u8; row_len * h as usize];
            let in_row = w as usize * in_channels;
            for (src, dst) in raw.chunks_exact(in_row).zip(out.chunks_exact_mut(row_len)) {
                widen(src, dst);
            }
            out
        };
        let img = to_image(w, h, out, alpha)?;
        return Ok(if k == 1 {
            img
        } else {
            img.resize_exact(w / k, h / k, image::imageops::FilterType::Triangle)
        });
    }
    let (ow, oh) = (w / k, h / k);
    let mut sums = vec![0u32; ow as usize * out_channels];
    let mut out = Vec::with_capacity(ow as usize * oh as usize * out_channels);
    let mut row = vec![0u8; row_len];
    let block = k * k;
    for y in 0..h {
        let Some(r) = reader.next_row().map_err(|e| failed(&e))? else {
            return Err("cannot decode the image: the PNG ends early".into());
        };
        if y / k >= oh {
            continue;
        }
        widen(r.data(), &mut row);
        for (x, px) in row.chunks_exact(out_channels).enumerate().take((ow * k) as usize) {
            let base = (x / k as usize) * out_channels;
            for (c, v) in px.iter().enumerate() {
                sums[base + c] += *v as u32;
            }
        }
        if y % k == k - 1 {
            out.extend(sums.iter().map(|s| (s / block) as u8));
            sums.iter_mut().for_each(|s| *s = 0);
        }
    }
    to_image(ow, oh, out, alpha)
}

fn to_image(w: u32, h: u32, pixels: Vec<u8>, alpha: bool) -> Result<DynamicImage, String> {
    let bad = || "cannot decode the image: its rows do not match its size".to_string();
    Ok(if alpha {
        DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, pixels).ok_or_else(bad)?)
    } else {
        DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels).ok_or_else(bad)?)
    })
}

/// The JPEG DCT scale (1, 2, 4 or 8) `decode_for_resize` reaches for resize `r`, either
/// way up: at least twice the pixels the resize needs stay on each axis.
fn jpeg_factor(g: &Geometry, r: &Resize) -> u64 {
    use image::metadata::Orientation::{NoTransforms, Rotate90};
    let size = (g.width, g.height);
    [NoTransforms, Rotate90]
        .into_iter()
        .map(|o| turbo::denominator(size, shrink_target(size, o, r)) as u64)
        .min()
        .unwrap_or(1)
}

/// The memory processing takes, in bytes, decided from the headers alone: the decode buffer
/// of the path `validate` or `decode_for_resize` takes, a rotation's copy (`rotates`), the
/// resizer's intermediate and output buffers and the encoder's copy and output.
pub fn work_bytes(g: &Geometry, format: ImageFormat, r: Option<&Resize>, rotates: bool) -> u64 {
    let px = g.largest_pixels;
    // Progressive JPEG decoders keep every DCT coefficient: 2 bytes a sample, 3 samples;
    // a thumbnail's decode may also hold a copy of the scans it needs.
    let coefficients = if format == ImageFormat::Jpeg && g.progressive {
        px * 6 + r.map_or(0, |_| (px as f64 * super::scans::MOST_BYTES_PER_PIXEL) as u64)
    } else {
        0
    };
    let Some(r) = r else {
        return coefficients
            + match format {
                ImageFormat::Png => g.width as u64 * 8 * 4,
                ImageFormat::Gif => 2 * CHUNK as u64,
                ImageFormat::Jpeg => px * 4 / 64,
                // WebP decodes whole; an animation composes frames onto a canvas.
                _ => px * 4 + g.width as u64 * g.height as u64 * 4,
            };
    };
    let size = (g.width, g.height);
    let decoded = match format {
        ImageFormat::Png => {
            let k = png_shrink(size, false, r).min(png_shrink(size, true, r)) as u64;
            // Interlaced or unshrunk PNGs are decoded whole (and widened from grey).
            if g.interlaced || k == 1 {
                px * 8
            } else {
                px * 4 / (k * k)
            }
        }
        ImageFormat::Jpeg => px * 4 / (jpeg_factor(g, r).pow(2)),
        // The image crate's GIF and WebP decoders: a frame buffer and the canvas.
        _ => px * 8,
    };
    let rotation = if rotates { decoded } else { 0 };
    // Every fit writes at most width x height; the resizer's horizontal pass keeps the
    // source's height at the output's width.
    let side = g.largest.0.max(g.largest.1) as u64;
    let out = r.width as u64 * r.height as u64 * 4;
    coefficients + decoded + rotation + side * r.width.max(r.height) as u64 * 4 + out * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png16(w: u32, h: u32, color: png::ColorType) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Sixteen);
        let mut writer = enc.write_header().unwrap();
        let samples = color.samples() * 2;
        // Each sample's high byte is the column, so an average is easy to predict.
        let data: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).flat_map(move |x| (0..samples).map(move |i| if i % 2 == 0 { x as u8 } else { 0 })))
            .collect();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn sixteen_bit_grey_png_is_shrunk_to_8_bit_rgb() {
        let bytes = png16(64, 32, png::ColorType::Grayscale);
        let img = decode_png_shrunk(&bytes, 4).unwrap();
        let rgb = img.as_rgb8().expect("8-bit RGB");
        assert_eq!(rgb.dimensions(), (16, 8));
        // Columns 4..8 average to 5 (high bytes 4,5,6,7 -> 5.5, truncated).
        assert_eq!(rgb.get_pixel(1, 3).0, [5, 5, 5]);
    }

    #[test]
    fn alpha_survives_and_damage_is_reported() {
        let bytes = png16(10, 10, png::ColorType::Rgba);
        let img = decode_png_shrunk(&bytes, 1).unwrap();
        assert!(img.as_rgba8().is_some());
        let g = super::super::frames::geometry(&bytes, ImageFormat::Png).unwrap();
        assert!(validate(&bytes, ImageFormat::Png, &g).is_ok());
        assert!(validate(&bytes[..bytes.len() - 20], ImageFormat::Png, &g).is_err());
    }

    /// A progressive JPEG (what most of the benchmark's photos are) goes through libjpeg-turbo
    /// at the DCT scale that keeps twice the thumbnail: 1/8 of 2000x1200 for 100 px, and 1/2
    /// for 500 px.
    #[test]
    fn progressive_jpeg_is_decoded_scaled_for_the_resize() {
        let rgb: Vec<u8> = (0..2000 * 1200 * 3).map(|i| (i % 251) as u8).collect();
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_progressive(true).unwrap();
        let bytes = c
            .compress_to_vec(turbojpeg::Image {
                pixels: rgb.as_slice(),
                width: 2000,
                pitch: 6000,
                height: 1200,
                format: turbojpeg::PixelFormat::RGB,
            })
            .unwrap();
        let g = super::super::frames::geometry(&bytes, ImageFormat::Jpeg).unwrap();
        assert!(g.progressive);
        let r = |side| Resize {
            width: side,
            height: side,
            fit: taskyard_api::Fit::Contain,
            format: taskyard_api::OutputFormat::Original,
            quality: 85,
        };
        let img = decode_for_resize(&bytes, ImageFormat::Jpeg, &g, &r(100)).unwrap();
        assert_eq!((img.width(), img.height()), (250, 150));
        let img = decode_for_resize(&bytes, ImageFormat::Jpeg, &g, &r(500)).unwrap();
        assert_eq!((img.width(), img.height()), (1000, 600));
        assert!(validate(&bytes, ImageFormat::Jpeg, &g).is_ok());
    }

    #[test]
    fn work_grows_with_the_pixels_kept() {
        let g = |w, h| {
            let mut g = super::super::frames::geometry(&png16(1, 1, png::ColorType::Rgb), ImageFormat::Png).unwrap();
            (g.width, g.height, g.largest, g.largest_pixels) = (w, h, (w, h), w as u64 * h as u64);
            g
        };
        let r = |side| Resize {
            width: side,
            height: side,
            fit: taskyard_api::Fit::Contain,
            format: taskyard_api::OutputFormat::Original,
            quality: 85,
        };
        // Checking only keeps rows; a thumbnail shrinks on load; a large box needs it whole.
        let big = g(7000, 7000);
        assert!(work_bytes(&big, ImageFormat::Png, None, false) < 1 << 20);
        assert!(work_bytes(&big, ImageFormat::Png, Some(&r(300)), false) < 16 << 20);
        assert!(work_bytes(&big, ImageFormat::Png, Some(&r(6000)), false) > 160 << 20);
        assert!(work_bytes(&big, ImageFormat::WebP, None, false) > 160 << 20);
        assert!(work_bytes(&g(2000, 2000), ImageFormat::WebP, None, false) < 160 << 20);
    }
}
