//! Every image a page references: `img[src]`, the largest `srcset` candidate (of `img` and of
//! `picture > source`), resolved against the page URL and `<base href>`. `data:` URIs are
//! skipped; each distinct URL is collected once, in page order, up to a cap.

use scraper::{Html, Selector};
use url::Url;

/// The images of a page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collected {
    /// Distinct absolute http(s) URLs, in page order, at most the cap.
    pub urls: Vec<String>,
    /// Distinct `data:` URIs (shortened), which are not fetched.
    pub skipped: Vec<String>,
    /// Distinct URLs past the cap.
    pub truncated: u32,
}

/// A `srcset` candidate's weight: its `w` or `x` descriptor (1x when it has none).
fn descriptor_weight(descriptor: &str) -> f64 {
    let d = descriptor.trim();
    if let Some(w) = d.strip_suffix(['w', 'W']) {
        w.trim().parse().unwrap_or(0.0)
    } else if let Some(x) = d.strip_suffix(['x', 'X']) {
        x.trim().parse().unwrap_or(0.0)
    } else {
        1.0
    }
}

/// The URL of the largest candidate in a `srcset`. Candidates are separated by commas that
/// follow whitespace or a descriptor; URLs themselves may contain commas.
pub fn largest_srcset_candidate(srcset: &str) -> Option<&str> {
    let mut best: Option<(&str, f64)> = None;
    let mut rest = srcset;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let url_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let mut url = &rest[..url_end];
        let mut after = &rest[url_end..];
        let descriptor;
        if url.ends_with(',') {
            // "a.png, b.png 2x": a URL ended by a comma has no descriptor.
            url = url.trim_end_matches(',');
            descriptor = "";
        } else {
            let desc_end = after.find(',').unwrap_or(after.len());
            descriptor = &after[..desc_end];
            after = &after[desc_end..];
        }
        let weight = descriptor_weight(descriptor);
        if !url.is_empty() && best.is_none_or(|(_, w)| weight > w) {
            best = Some((url, weight));
        }
        rest = after;
    }
    best.map(|(url, _)| url)
}

/// Parses `html` (without an element budget: for trusted or small input) and collects.
pub fn collect_images(html: &str, page: &Url, max: usize) -> Collected {
    collect_from(&Html::parse_document(html), page, max)
}

/// The images of a parsed page.
pub fn collect_from(doc: &Html, page: &Url, max: usize) -> Collected {
    let selector = |s: &str| Selector::parse(s).expect("a valid selector");
    let base = doc
        .select(&selector("base[href]"))
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| page.join(href.trim()).ok())
        .unwrap_or_else(|| page.clone());

    let mut refs: Vec<&str> = Vec::new();
    for el in doc.select(&selector("img, picture > source")) {
        let e = el.value();
        if e.name() == "img"
            && let Some(src) = e.attr("src")
        {
            refs.push(src);
        }
        if let Some(best) = e.attr("srcset").and_then(largest_srcset_candidate) {
            refs.push(best);
        }
    }

    let mut out = Collected::default();
    let mut seen = std::collections::HashSet::new();
    for raw in refs {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        // Bytes, not a str slice: byte 5 may fall inside a multi-byte character.
        if raw
            .as_bytes()
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"data:"))
        {
            let short: String = raw.chars().take(64).collect();
            if seen.insert(short.clone()) {
                out.skipped.push(short);
            }
            continue;
        }
        let Ok(mut url) = base.join(raw) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        let url = url.to_string();
        if !seen.insert(url.clone()) {
            continue;
        }
        if out.urls.len() < max {
            out.urls.push(url);
        } else {
            out.truncated += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srcset_largest_by_w_or_x() {
        assert_eq!(
            largest_srcset_candidate("a.png 100w, b.png 300w, c.png 200w"),
            Some("b.png")
        );
        assert_eq!(largest_srcset_candidate("a.png, b.png 2x, c.png 1.5x"), Some("b.png"));
        assert_eq!(largest_srcset_candidate("  one.png  "), Some("one.png"));
        assert_eq!(
            largest_srcset_candidate("img,1.png 1x, img,2.png 2x"),
            Some("img,2.png")
        );
        assert_eq!(largest_srcset_candidate(""), None);
    }

    #[test]
    fn every_reference_form_resolved_once_in_page_order() {
        let page = Url::parse("https://example.com/gallery/index.html").unwrap();
        let html = r#"<html><head><base href="/static/"></head><body>
            <img src="a.png"><img src="a.png"><img src="/root.jpg">
            <img src="//cdn.example.net/p.gif">
            <img src="small.jpg" srcset="small.jpg 100w, large.jpg 800w">
            <picture><source srcset="hero.webp 1x, hero@2x.webp 2x"><img src="hero.jpg"></picture>
            <img src="data:image/png;base64,iVBORw0KGgo="><img src="">
            <img src="https://other.example.org/x.png#frag">
            <img src="ftp://example.com/no.png">
        </body></html>"#;
        let got = collect_images(html, &page, 100);
        assert_eq!(
            got.urls,
            [
                "https://example.com/static/a.png",
                "https://example.com/root.jpg",
                "https://cdn.example.net/p.gif",
                "https://example.com/static/small.jpg",
                "https://example.com/static/large.jpg",
                "https://example.com/static/hero@2x.webp",
                "https://example.com/static/hero.jpg",
                "https://other.example.org/x.png",
            ]
        );
        assert_eq!(got.skipped.len(), 1);
        assert_eq!(got.truncated, 0);
    }

    #[test]
    fn non_ascii_urls_shorter_than_five_bytes_of_prefix() {
        let page = Url::parse("http://h/").unwrap();
        let got = collect_images(r#"<img src="日本.png"><img src="é"><img src="DATA:x">"#, &page, 10);
        assert_eq!(got.urls, ["http://h/%E6%97%A5%E6%9C%AC.png", "http://h/%C3%A9"]);
        assert_eq!(got.skipped, ["DATA:x"]);
    }

    #[test]
    fn the_cap_counts_what_it_leaves_out() {
        let page = Url::parse("http://h/").unwrap();
        let html: String = (0..10).map(|i| format!("<img src=\"{i}.png\">")).collect();
        let got = collect_images(&html, &page, 4);
        assert_eq!(got.urls.len(), 4);
        assert_eq!(got.truncated, 6);
    }
}
