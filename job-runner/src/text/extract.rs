//! The readable text of an HTML document: scripts, styles, noscript and templates dropped,
//! block elements on their own lines, whitespace collapsed, no empty lines. Parsed with
//! html5ever (through scraper), so entities are decoded and broken markup is handled as a
//! browser would.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// Elements whose content is never text a reader sees.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "head", "iframe", "object", "svg", "math", "canvas",
];

/// Elements that start and end a line.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "nav",
    "ol",
    "option",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// A document's text and title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Lines joined with `\n`, no empty lines, no trailing newline.
    pub text: String,
    pub title: Option<String>,
}

/// Collapses runs of whitespace to one space and trims.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Builds lines from pieces of text and line breaks.
#[derive(Default)]
struct Lines {
    done: Vec<String>,
    current: String,
}

impl Lines {
    fn push(&mut self, text: &str) {
        self.current.push_str(text);
    }

    fn flush(&mut self) {
        let line = collapse(&self.current);
        if !line.is_empty() {
            self.done.push(line);
        }
        self.current.clear();
    }
}

/// Parses `html` (without an element budget: for trusted or small input) and extracts.
pub fn extract_html(html: &str) -> Extracted {
    extract_document(&Html::parse_document(html))
}

/// The text and title of a parsed document.
pub fn extract_document(doc: &Html) -> Extracted {
    let mut lines = Lines::default();
    let mut skipping = 0usize;
    let mut title = None;
    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(e) if SKIPPED.contains(&e.name()) => {
                    if e.name() == "head" {
                        title = title.or_else(|| title_of(node));
                    }
                    skipping += 1;
                }
                _ if skipping > 0 => {}
                Node::Element(e) if e.name() == "br" => lines.flush(),
                Node::Element(e) if BLOCKS.contains(&e.name()) => lines.flush(),
                Node::Element(e) if e.name() == "title" && title.is_none() => {
                    title = title_of(node);
                    skipping += 1;
                }
                Node::Text(t) => lines.push(t),
                _ => {}
            },
            Edge::Close(node) => match node.value() {
                Node::Element(e) if SKIPPED.contains(&e.name()) || (e.name() == "title" && skipping > 0) => {
                    skipping = skipping.saturating_sub(1);
                }
                _ if skipping > 0 => {}
                Node::Element(e) if BLOCKS.contains(&e.name()) => lines.flush(),
                _ => {}
            },
        }
    }
    lines.flush();
    Extracted {
        text: lines.done.join("\n"),
        title: title.filter(|t| !t.is_empty()),
    }
}

/// The collapsed text of the first `<title>` at or below `node`.
fn title_of(node: ego_tree::NodeRef<'_, Node>) -> Option<String> {
    let title = node
        .descendants()
        .find(|n| matches!(n.value(), Node::Element(e) if e.name() == "title"))?;
    let text: String = title
        .descendants()
        .filter_map(|n| n.value().as_text().map(|t| t.to_string()))
        .collect();
    Some(collapse(&text))
}

/// Plain text is taken as it is, with line endings normalised.
pub fn plain_text(text: &str) -> Extracted {
    Extracted {
        text: text.replace("\r\n", "\n").replace('\r', "\n"),
        title: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_text_of_a_page() {
        let page = r##"<!doctype html><html><head><title> The  Title </title><style>p{}</style>
            <script>var x = "<p>not text</p>";</script></head>
            <body><h1>Heading &amp; more</h1>
            <p>First   paragraph with <b>bold</b> and <a href="#">a link</a>.</p>
            <noscript>enable js</noscript><template><p>hidden</p></template>
            <div>Line one<br>Line two</div>
            <ul><li>one</li><li>two</li></ul>
            <p>   </p><p>caf&eacute; &lt;tag&gt; &#x263A;</p>
            </body></html>"##;
        let got = extract_html(page);
        assert_eq!(got.title.as_deref(), Some("The Title"));
        assert_eq!(
            got.text,
            "Heading & more\nFirst paragraph with bold and a link.\nLine one\nLine two\none\ntwo\ncafé <tag> ☺"
        );
    }

    #[test]
    fn broken_markup_and_title_in_body() {
        let got = extract_html("<title>T</title><p>unclosed <i>italic<p>next");
        assert_eq!(got.title.as_deref(), Some("T"));
        assert_eq!(got.text, "unclosed italic\nnext");
        assert_eq!(extract_html("").text, "");
    }

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(plain_text("a  b\r\n\r\nc").text, "a  b\n\nc");
    }
}
