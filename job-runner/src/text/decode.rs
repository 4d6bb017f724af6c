//! Decoding a document to UTF-8. The charset comes from, in order: a byte-order mark, the
//! HTTP Content-Type header, a `<meta charset>` or `http-equiv` declaration in the first
//! 1024 bytes, valid UTF-8, and finally detection from the bytes.

use encoding_rs::{Encoding, UTF_8};

/// What kind of document the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Html,
    PlainText,
}

/// Decides HTML or plain text from the declared media type, else from the bytes.
pub fn document_kind(content_type: Option<&str>, bytes: &[u8]) -> DocumentKind {
    let media = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("text/plain") => DocumentKind::PlainText,
        Some("text/html") | Some("application/xhtml+xml") => DocumentKind::Html,
        _ => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
            let start = head.trim_start_matches('\u{feff}').trim_start();
            let looks_html = start.starts_with("<!doctype html")
                || start.starts_with("<html")
                || ["<head", "<body", "<p>", "<div", "<title", "<meta"]
                    .iter()
                    .any(|t| head.contains(t));
            if looks_html {
                DocumentKind::Html
            } else {
                DocumentKind::PlainText
            }
        }
    }
}

/// The charset a Content-Type header declares.
fn header_charset(content_type: Option<&str>) -> Option<&'static Encoding> {
    let ct = content_type?;
    ct.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset"))
            .then(|| Encoding::for_label(v.trim().trim_matches('"').as_bytes()))?
    })
}

/// The charset a `<meta>` in the first 1024 bytes declares.
fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(start) = rest.find("<meta") {
        let tag_end = rest[start..].find('>').map(|e| start + e).unwrap_or(rest.len());
        let tag = &rest[start..tag_end];
        if let Some(pos) = tag.find("charset") {
            let value = tag[pos + "charset".len()..]
                .trim_start()
                .strip_prefix('=')
                .map(str::trim_start);
            if let Some(value) = value {
                let value = value.trim_start_matches(['"', '\'']);
                let end = value
                    .find(|c: char| c == '"' || c == '\'' || c == ';' || c == '/' || c.is_whitespace())
                    .unwrap_or(value.len());
                if let Some(enc) = Encoding::for_label(&value.as_bytes()[..end]) {
                    // A page cannot really be UTF-16 if its ASCII declaration was readable.
                    return Some(if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                        UTF_8
                    } else {
                        enc
                    });
                }
            }
        }
        rest = &rest[tag_end..];
    }
    None
}

/// Decodes `bytes` to UTF-8; returns the text and the encoding used.
pub fn decode(bytes: &[u8], content_type: Option<&str>, kind: DocumentKind) -> (String, &'static Encoding) {
    let encoding = Encoding::for_bom(bytes)
        .map(|(enc, _)| enc)
        .or_else(|| header_charset(content_type))
        .or_else(|| {
            if kind == DocumentKind::Html {
                meta_charset(bytes)
            } else {
                None
            }
        })
        .unwrap_or_else(|| {
            if std::str::from_utf8(bytes).is_ok() {
                UTF_8
            } else {
                // Valid UTF-8 was taken above, so detection need not consider it.
                let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
                detector.feed(bytes, true);
                detector.guess(None, chardetng::Utf8Detection::Deny)
            }
        });
    // decode() also strips a BOM and replaces malformed sequences.
    let (text, used, _) = encoding.decode(bytes);
    (text.into_owned(), used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_sources_in_order() {
        let cp1251 = encoding_rs::WINDOWS_1251.encode("Привет").0.into_owned();
        // Header wins over meta.
        let mut page = b"<meta charset=\"utf-8\"><p>".to_vec();
        page.extend_from_slice(&cp1251);
        let (text, enc) = decode(&page, Some("text/html; charset=windows-1251"), DocumentKind::Html);
        assert_eq!(enc, encoding_rs::WINDOWS_1251);
        assert!(text.ends_with("Привет"));
        // Meta, both forms.
        let mut page = b"<meta http-equiv='Content-Type' content='text/html; charset=windows-1251'><p>".to_vec();
        page.extend_from_slice(&cp1251);
        assert_eq!(
            decode(&page, Some("text/html"), DocumentKind::Html).1,
            encoding_rs::WINDOWS_1251
        );
        let mut page = b"<meta charset=windows-1251><p>".to_vec();
        page.extend_from_slice(&cp1251);
        assert_eq!(decode(&page, None, DocumentKind::Html).1, encoding_rs::WINDOWS_1251);
        // Nothing declared, not UTF-8: detected.
        let sjis = encoding_rs::SHIFT_JIS
            .encode("こんにちは、世界。日本語のテキストです。")
            .0
            .into_owned();
        let (text, enc) = decode(&sjis, None, DocumentKind::PlainText);
        assert_eq!(enc, encoding_rs::SHIFT_JIS);
        assert_eq!(text, "こんにちは、世界。日本語のテキストです。");
        // A BOM wins over everything.
        let (text, enc) = decode(
            b"\xef\xbb\xbfhi",
            Some("text/plain; charset=latin1"),
            DocumentKind::PlainText,
        );
        assert_eq!((text.as_str(), enc), ("hi", UTF_8));
    }

    #[test]
    fn document_kind_from_header_or_bytes() {
        assert_eq!(
            document_kind(Some("text/plain; charset=utf-8"), b"<html>"),
            DocumentKind::PlainText
        );
        assert_eq!(
            document_kind(Some("application/octet-stream"), b"  <!DOCTYPE html><html>"),
            DocumentKind::Html
        );
        assert_eq!(document_kind(None, b"just words"), DocumentKind::PlainText);
    }
}
