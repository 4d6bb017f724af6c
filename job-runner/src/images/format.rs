//! An image's format, decided from its bytes: never from the URL or the Content-Type.

use image::ImageFormat;

/// The formats Taskyard stores, with their key extension and media type.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    match image::guess_format(bytes).ok()? {
        f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP) => Some(f),
        _ => None,
    }
}

pub fn extension(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpg",
        ImageFormat::Png => "png",
        ImageFormat::Gif => "gif",
        ImageFormat::WebP => "webp",
        _ => "bin",
    }
}

pub fn content_type(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Png => "image/png",
        ImageFormat::Gif => "image/gif",
        ImageFormat::WebP => "image/webp",
        _ => "application/octet-stream",
    }
}

/// Catches a truncated JPEG, which lenient decoders would fill in with grey: the
/// end-of-image marker must follow the last start-of-scan marker. (Markers cannot occur
/// inside entropy-coded data, and an embedded thumbnail ends before the main scan starts.)
pub fn check_complete(bytes: &[u8], format: ImageFormat) -> Result<(), String> {
    if format != ImageFormat::Jpeg {
        return Ok(());
    }
    // memchr's SIMD search: a byte-pair loop scanning megabytes cost 10 % of an ImageTask.
    let last_scan = memchr::memmem::rfind(bytes, &[0xFF, 0xDA]);
    let complete = last_scan.is_some_and(|sos| memchr::memmem::find(&bytes[sos..], &[0xFF, 0xD9]).is_some());
    if complete {
        Ok(())
    } else {
        Err("cannot decode the image: the JPEG is truncated (it has no end-of-image marker)".into())
    }
}

/// The format of a stored key's extension.
pub fn from_extension(key: &str) -> Option<ImageFormat> {
    match key.rsplit('.').next()? {
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        "png" => Some(ImageFormat::Png),
        "gif" => Some(ImageFormat::Gif),
        "webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_bytes_not_names() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0...."), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a...."), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"<!doctype html><html>"), None);
        assert_eq!(extension(ImageFormat::Jpeg), "jpg");
        assert_eq!(from_extension("images/ab/x.webp"), Some(ImageFormat::WebP));
        let jpeg = [0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 3, 0xFF, 0xD9, 0];
        assert!(check_complete(&jpeg, ImageFormat::Jpeg).is_ok());
        assert!(check_complete(&jpeg[..7], ImageFormat::Jpeg).is_err());
        assert!(check_complete(&jpeg[..7], ImageFormat::Png).is_ok());
    }
}
