//! Parsing HTML within an element budget. The HTML5 tree builder re-opens unclosed
//! formatting elements in every new block, so a 10 MiB page can build millions of elements;
//! past the budget no more are made, and the caller fails the page with `LimitExceeded`.

use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;

use ego_tree::NodeId;
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{Html, HtmlTreeSink};

/// The page built more elements than the budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementBudgetExceeded {
    pub limit: u64,
}

/// Input fed to the parser at a time; past the budget the rest is not parsed.
const FEED: usize = 64 << 10;

/// Parses `html` as a document, creating at most `max_elements` elements and comments.
pub fn parse_bounded(html: &str, max_elements: u64) -> Result<Html, ElementBudgetExceeded> {
    let over = Rc::new(Cell::new(false));
    let sink = BudgetSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        made: Cell::new(0),
        limit: max_elements,
        trash: Cell::new(None),
        over: over.clone(),
    };
    let mut parser = html5ever::parse_document(sink, Default::default());
    let mut rest = html;
    while !rest.is_empty() && !over.get() {
        let mut end = rest.len().min(FEED);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        parser.process(StrTendril::from_slice(&rest[..end]));
        rest = &rest[end..];
    }
    let (doc, over) = parser.finish();
    if over {
        Err(ElementBudgetExceeded { limit: max_elements })
    } else {
        Ok(doc)
    }
}

/// Scraper's sink, counting what it creates. Once over budget every new node is one shared,
/// detached "trash" element: nothing is attached to it or from it, so memory stops growing
/// while the tokenizer runs to the end of the (size-limited) input.
struct BudgetSink {
    inner: HtmlTreeSink,
    made: Cell<u64>,
    limit: u64,
    trash: Cell<Option<NodeId>>,
    /// Set with `trash`, for the feeding loop.
    over: Rc<Cell<bool>>,
}

impl BudgetSink {
    fn over(&self) -> bool {
        self.trash.get().is_some()
    }

    fn is_trash(&self, id: &NodeId) -> bool {
        self.trash.get() == Some(*id)
    }

    fn child_is_trash(&self, child: &NodeOrText<NodeId>) -> bool {
        matches!(child, NodeOrText::AppendNode(id) if self.is_trash(id))
    }

    /// Counts one new node; `Some(trash)` when the budget is spent.
    fn spend(&self, name: &QualName) -> Option<NodeId> {
        if let Some(trash) = self.trash.get() {
            return Some(trash);
        }
        self.made.set(self.made.get() + 1);
        if self.made.get() <= self.limit {
            return None;
        }
        let trash = self
            .inner
            .create_element(name.clone(), Vec::new(), ElementFlags::default());
        self.trash.set(Some(trash));
        self.over.set(true);
        Some(trash)
    }
}

/// The name of the trash node when a comment or processing instruction spends the budget.
fn placeholder_name() -> QualName {
    QualName::new(
        None,
        html5ever::Namespace::from("http://www.w3.org/1999/xhtml"),
        html5ever::LocalName::from("span"),
    )
}

impl TreeSink for BudgetSink {
    type Output = (Html, bool);
    type Handle = NodeId;
    type ElemName<'a> = <HtmlTreeSink as TreeSink>::ElemName<'a>;

    fn finish(self) -> (Html, bool) {
        let over = self.over();
        (self.inner.finish(), over)
    }

    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg)
    }

    fn get_document(&self) -> NodeId {
        self.inner.get_document()
    }

    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Self::ElemName<'a> {
        self.inner.elem_name(target)
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        match self.spend(&name) {
            Some(trash) => trash,
            None => self.inner.create_element(name, attrs, flags),
        }
    }

    fn create_comment(&self, text: StrTendril) -> NodeId {
        match self.spend(&placeholder_name()) {
            Some(trash) => trash,
            None => self.inner.create_comment(text),
        }
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        match self.spend(&placeholder_name()) {
            Some(trash) => trash,
            None => self.inner.create_pi(target, data),
        }
    }

    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        if !self.is_trash(parent) && !self.child_is_trash(&child) {
            self.inner.append(parent, child)
        }
    }

    fn append_based_on_parent_node(&self, element: &NodeId, prev_element: &NodeId, child: NodeOrText<NodeId>) {
        if !self.is_trash(element) && !self.is_trash(prev_element) && !self.child_is_trash(&child) {
            self.inner.append_based_on_parent_node(element, prev_element, child)
        }
    }

    fn append_doctype_to_document(&self, name: StrTendril, public_id: StrTendril, system_id: StrTendril) {
        if !self.over() {
            self.inner.append_doctype_to_document(name, public_id, system_id)
        }
    }

    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        if self.is_trash(target) {
            return *target;
        }
        self.inner.get_template_contents(target)
    }

    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode)
    }

    fn append_before_sibling(&self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        if !self.is_trash(sibling) && !self.child_is_trash(&new_node) {
            self.inner.append_before_sibling(sibling, new_node)
        }
    }

    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        if !self.is_trash(target) {
            self.inner.add_attrs_if_missing(target, attrs)
        }
    }

    fn remove_from_parent(&self, target: &NodeId) {
        if !self.is_trash(target) {
            self.inner.remove_from_parent(target)
        }
    }

    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        if !self.is_trash(node) && !self.is_trash(new_parent) {
            self.inner.reparent_children(node, new_parent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fonts` distinct formatting elements left open, then `blocks` blocks whose text makes
    /// the tree builder re-open all of them.
    pub fn amplifying_page(fonts: usize, blocks: usize) -> String {
        let mut page = String::from("<div>");
        page.extend((0..fonts).map(|i| format!("<font id={i}>")));
        page.push_str("</div>");
        page.push_str(&"<div>x</div>".repeat(blocks));
        page
    }

    #[test]
    fn ordinary_pages_parse_whole() {
        let doc = parse_bounded("<p>a<b>b</b></p><img src=x>", 100).unwrap();
        let sel = scraper::Selector::parse("img").unwrap();
        assert_eq!(doc.select(&sel).count(), 1);
    }

    #[test]
    fn unclosed_formatting_tags_stop_at_the_budget() {
        // 200 distinct unclosed <font>s, re-opened for the text of each of 2000 divs: 400k
        // elements from a 30 KB page.
        let page = amplifying_page(200, 2000);
        assert_eq!(
            parse_bounded(&page, 50_000).err(),
            Some(ElementBudgetExceeded { limit: 50_000 })
        );
        assert!(parse_bounded(&page, 1_000_000).is_ok());
    }
}
