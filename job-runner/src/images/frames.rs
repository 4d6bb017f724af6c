//! Image geometry from the container's own headers, before any decoder runs: the canvas and
//! every frame (GIF image descriptors, APNG `fcTL`, WebP `ANMF`, JPEG `SOF`). A decoder
//! allocates for the frame it decodes, which can be far larger than the canvas a generic
//! header reader reports (a 1x1 GIF screen holding an 11000x11000 frame).

use image::ImageFormat;

/// What decoding an image will allocate for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    /// Pixels of the largest of the canvas and every frame.
    pub largest_pixels: u64,
    /// The largest frame's size (the canvas when it is the largest).
    pub largest: (u32, u32),
    /// PNG: bits per sample (16-bit images are decoded stripped to 8 bits).
    pub bit_depth: u8,
    /// JPEG: progressive (its decoder keeps every coefficient of the image).
    pub progressive: bool,
    /// PNG: Adam7-interlaced (its rows cannot be shrunk as they arrive).
    pub interlaced: bool,
}

impl Geometry {
    fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            largest_pixels: width as u64 * height as u64,
            largest: (width, height),
            bit_depth: 8,
            progressive: false,
            interlaced: false,
        }
    }

    fn frame(&mut self, w: u32, h: u32) {
        let pixels = w as u64 * h as u64;
        if pixels > self.largest_pixels {
            self.largest_pixels = pixels;
            self.largest = (w, h);
        }
    }
}

/// Reads the geometry of `bytes`, an image of `format`. Truncated trailing data ends the
/// walk (the decoder reports it); a header too short to name a size is an error.
pub fn geometry(bytes: &[u8], format: ImageFormat) -> Result<Geometry, String> {
    let g = match format {
        ImageFormat::Gif => gif(bytes),
        ImageFormat::Png => png(bytes),
        ImageFormat::WebP => webp(bytes),
        ImageFormat::Jpeg => jpeg(bytes),
        _ => None,
    };
    g.ok_or_else(|| format!("cannot read the {format:?} header: it is truncated or malformed"))
}

fn u16le(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn u16be(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn u24le(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(s[0] as u32 | (s[1] as u32) << 8 | (s[2] as u32) << 16)
}

fn u32be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Skips GIF data sub-blocks from `pos`; the position after the terminator.
fn gif_sub_blocks(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *b.get(pos)? as usize;
        pos += 1 + len;
        if len == 0 {
            return Some(pos);
        }
    }
}

fn gif(b: &[u8]) -> Option<Geometry> {
    if !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return None;
    }
    let mut g = Geometry::new(u16le(b, 6)?, u16le(b, 8)?);
    let flags = *b.get(10)?;
    let mut pos = 13;
    if flags & 0x80 != 0 {
        pos += 3 << ((flags & 7) + 1);
    }
    while let Some(&block) = b.get(pos) {
        match block {
            0x21 => match gif_sub_blocks(b, pos + 2) {
                Some(next) => pos = next,
                None => break,
            },
            0x2C => {
                let (Some(w), Some(h), Some(&f)) = (u16le(b, pos + 5), u16le(b, pos + 7), b.get(pos + 9)) else {
                    break;
                };
                g.frame(w, h);
                pos += 10;
                if f & 0x80 != 0 {
                    pos += 3 << ((f & 7) + 1);
                }
                // LZW minimum code size, then the image data.
                match gif_sub_blocks(b, pos + 1) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
            _ => break,
        }
    }
    Some(g)
}

fn png(b: &[u8]) -> Option<Geometry> {
    if !b.starts_with(b"\x89PNG\r\n\x1a\n") || b.get(12..16)? != b"IHDR" {
        return None;
    }
    let mut g = Geometry::new(u32be(b, 16)?, u32be(b, 20)?);
    g.bit_depth = *b.get(24)?;
    g.interlaced = *b.get(28)? != 0;
    let mut pos = 8;
    while let (Some(len), Some(kind)) = (u32be(b, pos), b.get(pos + 4..pos + 8)) {
        if kind == b"fcTL"
            && let (Some(w), Some(h)) = (u32be(b, pos + 12), u32be(b, pos + 16))
        {
            g.frame(w, h);
        }
        pos = pos.checked_add(12 + len as usize)?;
    }
    Some(g)
}

fn webp(b: &[u8]) -> Option<Geometry> {
    if b.get(0..4)? != b"RIFF" || b.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut g: Option<Geometry> = None;
    let mut pos = 12;
    while let (Some(kind), Some(len)) = (b.get(pos..pos + 4), u32le(b, pos + 4)) {
        let data = pos + 8;
        let size = match kind {
            b"VP8X" => Some((u24le(b, data + 4)? + 1, u24le(b, data + 7)? + 1)),
            b"VP8 " => vp8_size(b, data),
            b"VP8L" => vp8l_size(b, data),
            b"ANMF" => Some((u24le(b, data + 6)? + 1, u24le(b, data + 9)? + 1)),
            _ => None,
        };
        if let Some((w, h)) = size {
            match g.as_mut() {
                Some(g) => g.frame(w, h),
                None => g = Some(Geometry::new(w, h)),
            }
        }
        // Chunks are padded to an even length.
        pos = data.checked_add(len as usize + (len as usize & 1))?;
    }
    g
}

fn vp8_size(b: &[u8], data: usize) -> Option<(u32, u32)> {
    (b.get(data + 3..data + 6)? == [0x9d, 0x01, 0x2a])
        .then(|| Some((u16le(b, data + 6)? & 0x3fff, u16le(b, data + 8)? & 0x3fff)))?
}

fn vp8l_size(b: &[u8], data: usize) -> Option<(u32, u32)> {
    if *b.get(data)? != 0x2f {
        return None;
    }
    let bits = u32le(b, data + 1)?;
    Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
}

fn jpeg(b: &[u8]) -> Option<Geometry> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut g: Option<Geometry> = None;
    let mut pos = 2;
    while pos + 4 <= b.len() {
        if b[pos] != 0xFF {
            break;
        }
        let marker = b[pos + 1];
        if marker == 0xFF {
            pos += 1;
            continue;
        }
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            pos += 2;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = u16be(b, pos + 2)? as usize;
        let sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if sof {
            let (h, w) = (u16be(b, pos + 5)?, u16be(b, pos + 7)?);
            let progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
            match g.as_mut() {
                Some(g) => g.frame(w, h),
                None => g = Some(Geometry::new(w, h)),
            }
            if let Some(g) = g.as_mut() {
                g.progressive |= progressive;
            }
        }
        pos += 2 + len;
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF whose screen is `screen` and whose one frame is `frame`, with no pixel data.
    pub fn gif_with_frame(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
        let mut b = b"GIF89a".to_vec();
        b.extend(screen.0.to_le_bytes());
        b.extend(screen.1.to_le_bytes());
        b.extend([0, 0, 0]);
        b.extend([0x21, 0xF9, 4, 0, 0, 0, 0, 0]);
        b.push(0x2C);
        b.extend([0, 0, 0, 0]);
        b.extend(frame.0.to_le_bytes());
        b.extend(frame.1.to_le_bytes());
        b.extend([0, 2, 2, 0x4C, 0x01, 0, 0x3B]);
        b
    }

    #[test]
    fn a_gif_frame_larger_than_its_screen_counts() {
        let g = geometry(&gif_with_frame((1, 1), (11000, 11000)), ImageFormat::Gif).unwrap();
        assert_eq!((g.width, g.height), (1, 1));
        assert_eq!(g.largest, (11000, 11000));
        assert_eq!(g.largest_pixels, 121_000_000);
    }

    #[test]
    fn every_encoded_format_reports_its_size() {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::new(37, 21));
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
            let bytes = crate::images::resize::encode(&img, format, 80).unwrap();
            let g = geometry(&bytes, format).unwrap();
            assert_eq!((g.width, g.height, g.largest_pixels), (37, 21, 777), "{format:?}");
        }
    }

    #[test]
    fn garbage_and_truncation_never_panic() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
            assert!(geometry(b"", format).is_err());
            assert!(geometry(&[0xFF; 40], format).is_err());
        }
        let gif = gif_with_frame((5, 5), (6, 6));
        for end in 0..gif.len() {
            let _ = geometry(&gif[..end], ImageFormat::Gif);
        }
    }
}
