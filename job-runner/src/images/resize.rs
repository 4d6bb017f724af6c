//! Decoding within limits, EXIF orientation, fitting to a box, encoding. CPU work: callers
//! run it on a blocking thread.

use std::io::Cursor;

use fast_image_resize as fr;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use taskyard_api::{Fit, OutputFormat, Resize};

use super::decode;
use super::frames::geometry;

/// Width and height from the header, without decoding the pixels.
pub fn dimensions(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), String> {
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| format!("cannot read the image header: {e}"))
}

/// Width and height once turned upright per the EXIF orientation, from the image's first
/// bytes (header and metadata), without decoding the pixels.
pub fn upright_dimensions(head: &[u8], format: ImageFormat) -> Result<(u32, u32), String> {
    let mut decoder = ImageReader::with_format(Cursor::new(head), format)
        .into_decoder()
        .map_err(|e| format!("cannot read the image header: {e}"))?;
    let (w, h) = decoder.dimensions();
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    Ok(if swaps_axes(orientation) { (h, w) } else { (w, h) })
}

/// Whether turning an image upright swaps its width and height.
pub(crate) fn swaps_axes(orientation: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation::*;
    matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
}

/// The pixels a resize to `r` needs kept on each stored (not upright) axis of a `(w, h)`
/// image when it is shrunk on load: twice the output's, at most the image's own.
pub(crate) fn shrink_target((w, h): (u32, u32), orientation: image::metadata::Orientation, r: &Resize) -> (u32, u32) {
    let (bw, bh) = if swaps_axes(orientation) {
        (r.height, r.width)
    } else {
        (r.width, r.height)
    };
    let (sx, sy) = match r.fit {
        Fit::Fill => (bw as f64 / w as f64, bh as f64 / h as f64),
        Fit::Contain => {
            let s = f64::min(bw as f64 / w as f64, bh as f64 / h as f64);
            (s, s)
        }
        Fit::Cover => {
            let s = f64::max(bw as f64 / w as f64, bh as f64 / h as f64);
            (s, s)
        }
    };
    let need = |size: u32, scale: f64| ((2.0 * size as f64 * scale).ceil() as u32).clamp(1, size);
    (need(w, sx), need(h, sy))
}

/// A JPEG decoded by jpeg-decoder at the smallest DCT scale that leaves `need` pixels on
/// each axis; `None` when no scaling helps or the colour model is not RGB or grey. The path
/// for what libjpeg-turbo refuses.
pub(crate) fn decode_jpeg_scaled(bytes: &[u8], (w, h): (u32, u32), (nw, nh): (u32, u32)) -> Option<DynamicImage> {
    if nw * 2 > w || nh * 2 > h {
        return None;
    }
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().ok()?;
    let clamp = |n: u32| n.min(u16::MAX as u32) as u16;
    let (dw, dh) = decoder.scale(clamp(nw), clamp(nh)).ok()?;
    let pixels = decoder.decode().ok()?;
    let (dw, dh) = (dw as u32, dh as u32);
    match decoder.info()?.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => image::RgbImage::from_raw(dw, dh, pixels).map(DynamicImage::ImageRgb8),
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(dw, dh, pixels).map(DynamicImage::ImageLuma8),
        _ => None,
    }
}

/// The output size for a source of `src` pixels fitted to `width` x `height`.
pub fn target_size(src: (u32, u32), fit: Fit, width: u32, height: u32) -> (u32, u32) {
    match fit {
        Fit::Fill | Fit::Cover => (width, height),
        Fit::Contain => {
            let scale = f64::min(width as f64 / src.0 as f64, height as f64 / src.1 as f64);
            let w = ((src.0 as f64 * scale).round() as u32).clamp(1, width);
            let h = ((src.1 as f64 * scale).round() as u32).clamp(1, height);
            (w, h)
        }
    }
}

/// Resizes with Lanczos3. `cover` crops the source to the box's aspect ratio around its centre.
pub fn resize(img: &DynamicImage, fit: Fit, width: u32, height: u32) -> Result<DynamicImage, String> {
    // 8-bit RGB or RGBA as it is; anything else converted to one of them.
    let converted;
    let src = match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img,
        other if other.color().has_alpha() => {
            converted = DynamicImage::ImageRgba8(other.to_rgba8());
            &converted
        }
        other => {
            converted = DynamicImage::ImageRgb8(other.to_rgb8());
            &converted
        }
    };
    let (w, h) = target_size((src.width(), src.height()), fit, width, height);
    let mut dst = DynamicImage::new(w, h, src.color());
    let mut options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    if fit == Fit::Cover {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    fr::Resizer::new()
        .resize(src, &mut dst, &options)
        .map_err(|e| format!("cannot resize the image: {e}"))?;
    Ok(dst)
}

/// Encodes `img` as `format`. JPEG (libjpeg-turbo, 4:2:0) drops alpha; WebP is written
/// lossless (the image crate has no lossy WebP encoder), so `quality` applies to JPEG only.
pub fn encode(img: &DynamicImage, format: ImageFormat, quality: u8) -> Result<Vec<u8>, String> {
    let failed = |e: &dyn std::fmt::Display| format!("cannot encode the image as {format:?}: {e}");
    if format == ImageFormat::Jpeg {
        let converted;
        let rgb = match img {
            DynamicImage::ImageRgb8(i) => i,
            other => {
                converted = other.to_rgb8();
                &converted
            }
        };
        return super::turbo::encode_rgb(rgb.as_raw(), rgb.dimensions(), quality).map_err(|e| failed(&e));
    }
    let mut out = Cursor::new(Vec::new());
    let result = match format {
        ImageFormat::Png => img.write_to(&mut out, ImageFormat::Png),
        other => DynamicImage::ImageRgba8(img.to_rgba8()).write_to(&mut out, other),
    };
    result.map_err(|e| failed(&e))?;
    Ok(out.into_inner())
}

/// A resized, encoded image.
pub struct Variant {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// What processing an image gave: the original's upright size, and the variant when resizing.
pub struct Processed {
    pub width: u32,
    pub height: u32,
    pub variant: Option<Variant>,
}

/// The format a resize writes, for an input of format `original`.
pub fn output_format(r: &Resize, original: ImageFormat) -> ImageFormat {
    match r.format {
        OutputFormat::Original => original,
        OutputFormat::Jpeg => ImageFormat::Jpeg,
        OutputFormat::Png => ImageFormat::Png,
        OutputFormat::Webp => ImageFormat::WebP,
    }
}

/// Checks the whole image decodes (so a damaged one fails here) and, when asked, resizes
/// and encodes it; see `decode` for the memory each path takes.
pub fn process(bytes: &[u8], format: ImageFormat, resize_to: Option<&Resize>) -> Result<Processed, String> {
    let g = geometry(bytes, format)?;
    let orientation = decode::orientation(bytes, format);
    let (width, height) = if swaps_axes(orientation) {
        (g.height, g.width)
    } else {
        (g.width, g.height)
    };
    let variant = match resize_to {
        None => {
            decode::validate(bytes, format, &g)?;
            None
        }
        Some(r) => {
            let img = decode::decode_for_resize(bytes, format, &g, r)?;
            // A contain box is fitted from the original's size: a shrunk decode (DCT scaling,
            // PNG box filter) can round the aspect ratio by a pixel.
            let (fit, w, h) = match r.fit {
                Fit::Contain => {
                    let (w, h) = target_size((width, height), Fit::Contain, r.width, r.height);
                    (Fit::Fill, w, h)
                }
                other => (other, r.width, r.height),
            };
            let out = resize(&img, fit, w, h)?;
            drop(img);
            let out_format = output_format(r, format);
            Some(Variant {
                bytes: encode(&out, out_format, r.quality)?,
                format: out_format,
                width: out.width(),
                height: out.height(),
            })
        }
    };
    Ok(Processed { width, height, variant })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_sizes() {
        assert_eq!(target_size((400, 200), Fit::Fill, 100, 100), (100, 100));
        assert_eq!(target_size((400, 200), Fit::Cover, 100, 100), (100, 100));
        assert_eq!(target_size((400, 200), Fit::Contain, 100, 100), (100, 50));
        assert_eq!(target_size((200, 400), Fit::Contain, 100, 100), (50, 100));
        assert_eq!(target_size((3, 1000), Fit::Contain, 100, 100), (1, 100));
        assert_eq!(target_size((50, 25), Fit::Contain, 100, 100), (100, 50));
    }

    #[test]
    fn geometry_comes_from_the_first_bytes_of_every_format() {
        // Noise, so that every encoding is far larger than the part read.
        let mut seed = 7u32;
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(900, 600, |_, _| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            image::Rgb([(seed >> 24) as u8, (seed >> 16) as u8, (seed >> 8) as u8])
        }));
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
            let bytes = encode(&img, format, 85).unwrap();
            assert!(bytes.len() > 64 << 10, "{format:?} is only {} bytes", bytes.len());
            assert_eq!(upright_dimensions(&bytes[..4096], format), Ok((900, 600)), "{format:?}");
        }
    }

    #[test]
    fn resizes_and_round_trips_every_format() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(300, 200, |x, y| {
            image::Rgb([x as u8, y as u8, 128])
        }));
        for (fit, want) in [(Fit::Fill, (64, 64)), (Fit::Cover, (64, 64)), (Fit::Contain, (64, 43))] {
            let out = resize(&img, fit, 64, 64).unwrap();
            assert_eq!((out.width(), out.height()), want, "{fit:?}");
        }
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
            let bytes = encode(&img, format, 85).unwrap();
            assert_eq!(crate::images::format::sniff(&bytes), Some(format));
            assert_eq!(dimensions(&bytes, format).unwrap(), (300, 200));
        }
    }
}
