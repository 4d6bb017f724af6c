//! Hostile images made in the test: headers that promise huge frames, 16-bit and interlaced
//! PNGs written row by row, padded files and noise.

use std::io::Write;

/// A GIF whose screen is `screen` and whose one frame descriptor is `frame`, with a tiny
/// valid LZW stream (decoders allocate for the frame before reading it).
pub fn gif_with_frame(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let mut b = b"GIF89a".to_vec();
    b.extend(screen.0.to_le_bytes());
    b.extend(screen.1.to_le_bytes());
    // A global colour table of 2 entries.
    b.extend([0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
    b.push(0x2C);
    b.extend([0, 0, 0, 0]);
    b.extend(frame.0.to_le_bytes());
    b.extend(frame.1.to_le_bytes());
    b.extend([0, 2, 2, 0x4C, 0x01, 0, 0x3B]);
    b
}

/// A PNG of `w`x`h` written row by row (never whole in memory): a gradient, `bit_depth` 8
/// or 16, RGBA. (The png crate writes no interlaced PNG: `interlaced_png` does.)
pub fn png_gradient(w: u32, h: u32, bit_depth: png::BitDepth) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(bit_depth);
        enc.set_compression(png::Compression::Balanced);
        let mut writer = enc.write_header().unwrap();
        let bytes_per_px = if bit_depth == png::BitDepth::Sixteen { 8 } else { 4 };
        let mut stream = writer.stream_writer_with_size(1 << 20).unwrap();
        let mut row = vec![0u8; w as usize * bytes_per_px];
        for y in 0..h {
            // Rows of one value each: they compress to almost nothing.
            row.fill((y & 0xFF) as u8);
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

/// A small valid PNG followed, inside the file, by a private ancillary chunk of `pad` bytes.
pub fn padded_png(pad: usize) -> Vec<u8> {
    let small = png_gradient(64, 64, png::BitDepth::Eight);
    // Insert the chunk after IHDR (8 + 25 bytes).
    let (head, rest) = small.split_at(33);
    let mut out = head.to_vec();
    chunk(&mut out, b"ruSt", &vec![0x55; pad]);
    out.extend_from_slice(rest);
    out
}

/// Noise encoded with the image crate.
pub fn encoded(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
    let mut seed = 7u32;
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |_, _| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        image::Rgb([(seed >> 24) as u8, (seed >> 16) as u8, (seed >> 8) as u8])
    }));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A JPEG header (SOF0) promising `w`x`h`, with an empty scan and an end marker.
pub fn jpeg_header_only(w: u16, h: u16) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8];
    b.extend([0xFF, 0xC0, 0, 11, 8]);
    b.extend(h.to_be_bytes());
    b.extend(w.to_be_bytes());
    b.extend([1, 1, 0x11, 0]);
    b.extend([0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0]);
    b.extend([0xFF, 0xD9]);
    b
}

/// A lossless WebP (VP8L) header promising `w`x`h` (at most 16384 a side), no image data.
pub fn webp_header_only(w: u32, h: u32) -> Vec<u8> {
    let bits: u32 = (w - 1) | ((h - 1) << 14);
    let mut chunk = vec![0x2f];
    chunk.extend(bits.to_le_bytes());
    chunk.extend([0u8; 3]);
    let mut b = b"RIFF".to_vec();
    b.extend(((4 + 8 + chunk.len()) as u32).to_le_bytes());
    b.extend(b"WEBPVP8L");
    b.extend((chunk.len() as u32).to_le_bytes());
    b.extend(chunk);
    b
}

pub fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend(&body);
    out.extend(taskyard_tests::images::crc32(&body).to_be_bytes());
}

/// zlib with stored (uncompressed) blocks.
fn zlib_stored(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if raw.is_empty() {
        vec![&[][..]]
    } else {
        raw.chunks(65535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        out.extend((block.len() as u16).to_le_bytes());
        out.extend((!(block.len() as u16)).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

/// An Adam7-interlaced 8-bit greyscale PNG of `w`x`h`, every pixel `v`.
pub fn interlaced_png(w: u32, h: u32, v: u8) -> Vec<u8> {
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in PASSES {
        let pw = w.saturating_sub(x0).div_ceil(dx);
        let ph = h.saturating_sub(y0).div_ceil(dy);
        if pw == 0 || ph == 0 {
            continue;
        }
        for _ in 0..ph {
            raw.push(0);
            raw.extend(std::iter::repeat_n(v, pw as usize));
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 1]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A PNG whose IHDR promises `w`x`h` (8-bit RGBA, optionally interlaced) and which has no
/// image data.
pub fn png_header_only(w: u32, h: u32, interlaced: bool) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, u8::from(interlaced)]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// An APNG whose canvas is 1x1 and whose frame control promises `w`x`h`.
pub fn apng_with_frame(w: u32, h: u32) -> Vec<u8> {
    let small = png_gradient(1, 1, png::BitDepth::Eight);
    let (head, rest) = small.split_at(33);
    let mut out = head.to_vec();
    chunk(&mut out, b"acTL", &[0, 0, 0, 1, 0, 0, 0, 0]);
    let mut fctl = vec![0, 0, 0, 0];
    fctl.extend(w.to_be_bytes());
    fctl.extend(h.to_be_bytes());
    fctl.extend([0u8; 8]);
    fctl.extend([0, 1, 0, 1, 0, 0]);
    chunk(&mut out, b"fcTL", &fctl);
    out.extend_from_slice(rest);
    out
}

/// An animated WebP whose canvas is 1x1 and whose one frame promises `w`x`h`.
pub fn webp_with_frame(w: u32, h: u32) -> Vec<u8> {
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02, 0, 0, 0];
    vp8x.extend(u24(0));
    vp8x.extend(u24(0));
    for (kind, data) in [
        (&b"VP8X"[..], vp8x),
        (&b"ANIM"[..], vec![0; 6]),
        (
            &b"ANMF"[..],
            [u24(0), u24(0), u24(w - 1), u24(h - 1), u24(100), vec![0]].concat(),
        ),
    ] {
        body.extend(kind);
        body.extend((data.len() as u32).to_le_bytes());
        body.extend(&data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}
