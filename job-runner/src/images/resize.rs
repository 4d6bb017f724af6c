//! Decoding within limits, EXIF orientation, fitting to a box, encoding. CPU work: callers
//! run it on a blocking thread.

use std::io::Cursor;

use fast_image_resize as fr;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use taskyard_api::{Fit, OutputFormat, Resize};

/// Width and height from the header, without decoding the pixels.
pub fn dimensions(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), String> {
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| format!("cannot read the image header: {e}"))
}

/// Decodes an image (whose header was checked against the pixel limit) and turns it upright
/// per its EXIF orientation.
pub fn decode_upright(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, String> {
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(|e| format!("cannot decode the image: {e}"))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode the image: {e}"))?;
    img.apply_orientation(orientation);
    Ok(img)
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
pub fn resize(
    img: &DynamicImage,
    fit: Fit,
    width: u32,
    height: u32,
) -> Result<DynamicImage, String> {
    let src = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let (w, h) = target_size((src.width(), src.height()), fit, width, height);
    let mut dst = DynamicImage::new(w, h, src.color());
    let mut options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    if fit == Fit::Cover {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| format!("cannot resize the image: {e}"))?;
    Ok(dst)
}

/// Encodes `img` as `format`. JPEG drops alpha; WebP is written lossless (the image crate has
/// no lossy WebP encoder), so `quality` applies to JPEG only.
pub fn encode(img: &DynamicImage, format: ImageFormat, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    let result = match format {
        ImageFormat::Jpeg => JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .encode_image(&img.to_rgb8()),
        ImageFormat::Png => img.write_to(&mut out, ImageFormat::Png),
        other => DynamicImage::ImageRgba8(img.to_rgba8()).write_to(&mut out, other),
    };
    result.map_err(|e| format!("cannot encode the image as {format:?}: {e}"))?;
    Ok(out.into_inner())
}

/// A resized, encoded image.
pub struct Variant {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// What processing an image gave: its upright size, and the variant when resizing.
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

/// Decodes the whole image (so a damaged one fails here), turns it upright, and resizes and
/// encodes it when asked.
pub fn process(
    bytes: &[u8],
    format: ImageFormat,
    resize_to: Option<&Resize>,
) -> Result<Processed, String> {
    let img = decode_upright(bytes, format)?;
    let variant = match resize_to {
        None => None,
        Some(r) => {
            let out = resize(&img, r.fit, r.width, r.height)?;
            let out_format = output_format(r, format);
            Some(Variant {
                bytes: encode(&out, out_format, r.quality)?,
                format: out_format,
                width: out.width(),
                height: out.height(),
            })
        }
    };
    Ok(Processed {
        width: img.width(),
        height: img.height(),
        variant,
    })
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
    fn resizes_and_round_trips_every_format() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(300, 200, |x, y| {
            image::Rgb([x as u8, y as u8, 128])
        }));
        for (fit, want) in [
            (Fit::Fill, (64, 64)),
            (Fit::Cover, (64, 64)),
            (Fit::Contain, (64, 43)),
        ] {
            let out = resize(&img, fit, 64, 64).unwrap();
            assert_eq!((out.width(), out.height()), want, "{fit:?}");
        }
        for format in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::WebP,
            ImageFormat::Gif,
        ] {
            let bytes = encode(&img, format, 85).unwrap();
            assert_eq!(crate::images::format::sniff(&bytes), Some(format));
            assert_eq!(dimensions(&bytes, format).unwrap(), (300, 200));
        }
    }
}
