//! A fixture website of images: every reference form, duplicates, and every kind of bad image.

use std::io::Cursor;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

/// A gradient image of `w` x `h`.
pub fn gradient(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 90])
    }))
}

pub fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img.to_rgb8())
            .unwrap(),
        other => img.write_to(&mut out, other).unwrap(),
    }
    out.into_inner()
}

/// A 40x20 JPEG, red on the left and blue on the right, whose EXIF orientation (6) says it
/// must be turned 90 degrees clockwise: upright it is 20x40, red on top.
pub fn exif_rotated_jpeg() -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) }
    }));
    let jpeg = encoded(&img, ImageFormat::Jpeg);
    // APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112) = 6.
    let tiff: Vec<u8> = [
        &b"II*\0"[..],
        &8u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &0x0112u16.to_le_bytes(),
        &3u16.to_le_bytes(),
        &1u32.to_le_bytes(),
        &6u16.to_le_bytes(),
        &[0, 0],
        &0u32.to_le_bytes(),
    ]
    .concat();
    let payload = [&b"Exif\0\0"[..], &tiff].concat();
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The CRC-32 of PNG chunks (IEEE), for hand-built PNGs.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A small, valid PNG whose header claims 40000x40000 pixels (a decompression bomb's header).
pub fn huge_header_png() -> Vec<u8> {
    let mut png = encoded(&gradient(4, 4), ImageFormat::Png);
    // IHDR data starts at byte 16: width, height; its CRC covers type and data (12..29).
    png[16..20].copy_from_slice(&40000u32.to_be_bytes());
    png[20..24].copy_from_slice(&40000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// Writes the image files of the fixture site into `dir`.
pub fn write_site(dir: &Path) {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    write("a.png", &encoded(&gradient(120, 80), ImageFormat::Png));
    write("b.jpg", &encoded(&gradient(300, 200), ImageFormat::Jpeg));
    write("c.gif", &encoded(&gradient(64, 64), ImageFormat::Gif));
    write("small.jpg", &encoded(&gradient(100, 50), ImageFormat::Jpeg));
    write("large.jpg", &encoded(&gradient(800, 400), ImageFormat::Jpeg));
    write("hero.webp", &encoded(&gradient(160, 90), ImageFormat::WebP));
    write("hero-2x.png", &encoded(&gradient(320, 180), ImageFormat::Png));
    write("fallback.png", &encoded(&gradient(50, 50), ImageFormat::Png));
    write("rotated.jpg", &exif_rotated_jpeg());
    write("huge.png", &huge_header_png());
    let full = encoded(&gradient(400, 300), ImageFormat::Jpeg);
    write("truncated.jpg", &full[..full.len() / 3]);
    write("fake.png", b"<!doctype html><html><body>not an image</body></html>");
    write("tiny.png", &encoded(&gradient(2, 2), ImageFormat::Png));
}
