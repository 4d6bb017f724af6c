//! Property tests: the parsers that read untrusted input never panic, whatever it is
//! (256 cases each): the HTML image finder and its srcset and URL resolution, the bounded
//! HTML parser, the URL check, the network classifier, and the image header readers and
//! decoders (on random bytes and on damaged real images).

use image::ImageFormat;
use proptest::prelude::*;
use taskyard_common::netpolicy::blocked_class;
use taskyard_runner::fetch::parse_http_url;
use taskyard_runner::html::parse_bounded;
use taskyard_runner::images::collect::{collect_images, largest_srcset_candidate};
use taskyard_runner::images::frames::geometry;
use url::Url;

const FORMATS: [ImageFormat; 4] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::WebP];

/// Tag soup: fragments of markup that matter to the finder, in any order.
fn soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<img src=".to_string()),
        Just("<img srcset=\"".to_string()),
        Just("<picture><source srcset=".to_string()),
        Just("<base href=".to_string()),
        Just("\"".to_string()),
        Just(">".to_string()),
        Just(", ".to_string()),
        Just(" 2x".to_string()),
        Just(" 100w".to_string()),
        Just("data:".to_string()),
        Just("//".to_string()),
        Just("<font>".to_string()),
        Just("</div>".to_string()),
        "[a-z0-9./:?#%@\\[\\]-]{0,12}",
        "\\PC{0,6}",
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_image_finder_keeps_to_http_urls(html in soup(), base in "[a-z]{1,8}(/[a-z0-9.]{0,6}){0,3}") {
        let page = Url::parse(&format!("https://{base}")).unwrap_or_else(|_| Url::parse("https://h/").unwrap());
        let got = collect_images(&html, &page, 7);
        prop_assert!(got.urls.len() <= 7);
        for u in &got.urls {
            let parsed = Url::parse(u).unwrap();
            prop_assert!(matches!(parsed.scheme(), "http" | "https"), "{u}");
            prop_assert!(parsed.fragment().is_none(), "{u}");
        }
    }

    #[test]
    fn the_image_finder_survives_any_text(html in "\\PC{0,400}") {
        let _ = collect_images(&html, &Url::parse("http://h/a/b").unwrap(), 100);
    }

    #[test]
    fn srcset_candidates_come_from_the_attribute(srcset in "[ ,a-z0-9.wx]{0,40}|\\PC{0,40}") {
        if let Some(best) = largest_srcset_candidate(&srcset) {
            prop_assert!(srcset.contains(best));
            prop_assert!(!best.is_empty());
        }
    }

    #[test]
    fn the_url_check_accepts_only_http(url in "(https?|ftp|file|data|javascript)?:?/{0,3}\\PC{0,40}") {
        if let Ok(u) = parse_http_url(&url) {
            prop_assert!(matches!(u.scheme(), "http" | "https"));
            prop_assert!(u.host_str().is_some_and(|h| !h.is_empty()));
        }
    }

    #[test]
    fn the_bounded_parser_survives_any_text(html in soup(), budget in 1u64..500) {
        let _ = parse_bounded(&html, budget);
    }

    #[test]
    fn embedded_ipv4_is_judged_as_ipv4(v4 in any::<u32>(), low in any::<u16>()) {
        let ip = std::net::Ipv4Addr::from(v4);
        let class = blocked_class(ip.into());
        let [a, b, c, d] = ip.octets();
        let mapped = ip.to_ipv6_mapped();
        let nat64 = std::net::Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        let six_to_four = std::net::Ipv6Addr::new(0x2002, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]), 0, 0, 0, 0, low);
        prop_assert_eq!(blocked_class(mapped.into()), class);
        prop_assert_eq!(blocked_class(nat64.into()), class);
        prop_assert_eq!(blocked_class(six_to_four.into()), class);
        if v4 > 1 {
            let compatible = std::net::Ipv6Addr::from(v4 as u128);
            prop_assert_eq!(blocked_class(compatible.into()), class);
        }
    }

    #[test]
    fn the_classifier_takes_any_ipv6(v6 in any::<u128>()) {
        let _ = blocked_class(std::net::Ipv6Addr::from(v6).into());
    }

    #[test]
    fn header_readers_survive_random_bytes(body in prop::collection::vec(any::<u8>(), 0..300), which in 0usize..4) {
        let prefix: &[u8] = [&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], b"\xff\xd8\xff", b"GIF89a", b"RIFF\0\0\0\0WEBP"][which];
        let bytes = [prefix, &body].concat();
        for format in FORMATS {
            let _ = geometry(&bytes, format);
        }
    }

    #[test]
    fn damaged_images_fail_cleanly(which in 0usize..4, cut in 0usize..2000, flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6)) {
        let format = FORMATS[which];
        let mut bytes = real_image(format).to_vec();
        for (at, value) in flips {
            let n = bytes.len();
            bytes[at % n] = value;
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        // As the runner does: the frame geometry and pixel limit first, then the decoder.
        if let Ok(g) = geometry(&bytes, format)
            && g.largest_pixels <= 1 << 20
        {
            let resize = taskyard_api::Resize {
                width: 7,
                height: 5,
                fit: taskyard_api::Fit::Cover,
                format: taskyard_api::OutputFormat::Original,
                quality: 80,
            };
            let _ = taskyard_runner::images::resize::process(&bytes, format, None);
            let _ = taskyard_runner::images::resize::process(&bytes, format, Some(&resize));
        }
    }
}

/// A small real image of `format`, encoded once.
fn real_image(format: ImageFormat) -> &'static [u8] {
    static IMAGES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let all = IMAGES.get_or_init(|| {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, ((x ^ y) * 4) as u8])
        }));
        FORMATS
            .iter()
            .map(|f| taskyard_runner::images::resize::encode(&img, *f, 80).unwrap())
            .collect()
    });
    &all[FORMATS.iter().position(|f| *f == format).unwrap()]
}
