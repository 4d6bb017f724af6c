//! Parsing HTML within an element budget. The HTML5 tree builder re-opens unclosed
//! formatting elements in every new block, so a 10 MiB page can build millions of elements;
//! past the budget no more are made, and the caller fails the page with `LimitExceeded`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use ego_tree::NodeId;
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{Html, HtmlTreeSink};

/// Deepest element nesting parsed. The tree builder's scope checks walk the stack of open
/// elements for every tag, so deep nesting costs time quadratic in the depth (100,000
/// nested divs take minutes); browsers cap the depth too (Blink at 512).
pub const MAX_DEPTH: u32 = 512;

/// Why a page was not parsed whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementBudgetExceeded {
    /// More elements than the budget.
    Elements { limit: u64 },
    /// Elements nested deeper than `MAX_DEPTH`.
    Depth { limit: u32 },
}

/// Input fed to the parser at a time; past the budget the rest is not parsed.
const FEED: usize = 16 << 10;

/// Parses `html` as a document, creating at most `max_elements` elements and comments.
pub fn parse_bounded(html: &str, max_elements: u64) -> Result<Html, ElementBudgetExceeded> {
    let over = Rc::new(Cell::new(false));
    let sink = BudgetSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        made: Cell::new(0),
        limit: max_elements,
        trash: Cell::new(None),
        over: over.clone(),
        depths: RefCell::new(HashMap::new()),
        too_deep: Cell::new(false),
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
    let (doc, over, too_deep) = parser.finish();
    match (over, too_deep) {
        (_, true) => Err(ElementBudgetExceeded::Depth { limit: MAX_DEPTH }),
        (true, false) => Err(ElementBudgetExceeded::Elements { limit: max_elements }),
        _ => Ok(doc),
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
    /// Each attached element's depth (approximate: moves by the adoption agency are not
    /// followed), to stop at `MAX_DEPTH`.
    depths: RefCell<HashMap<NodeId, u32>>,
    too_deep: Cell<bool>,
}

impl BudgetSink {
    fn over(&self) -> bool {
        self.trash.get().is_some()
    }

    fn is_trash(&self, id: &NodeId) -> bool {
        self.trash.get() == Some(*id)
    }

    /// Records `child` one level below `parent`; past `MAX_DEPTH` the budget is spent.
    fn place(&self, parent: &NodeId, child: &NodeOrText<NodeId>, below: u32) {
        if let NodeOrText::AppendNode(id) = child {
            let mut depths = self.depths.borrow_mut();
            let depth = depths.get(parent).copied().unwrap_or(0) + below;
            depths.insert(*id, depth);
            if depth > MAX_DEPTH && !self.over() {
                drop(depths);
                self.too_deep.set(true);
                self.made.set(self.limit);
                let _ = self.spend(&placeholder_name());
            }
        }
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
    type Output = (Html, bool, bool);
    type Handle = NodeId;
    type ElemName<'a> = <HtmlTreeSink as TreeSink>::ElemName<'a>;

    fn finish(self) -> (Html, bool, bool) {
        let (over, too_deep) = (self.over(), self.too_deep.get());
        (self.inner.finish(), over, too_deep)
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
            self.place(parent, &child, 1);
            self.inner.append(parent, child)
        }
    }

    fn append_based_on_parent_node(&self, element: &NodeId, prev_element: &NodeId, child: NodeOrText<NodeId>) {
        if !self.is_trash(element) && !self.is_trash(prev_element) && !self.child_is_trash(&child) {
            self.place(prev_element, &child, 1);
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
            self.place(sibling, &new_node, 0);
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
            Some(ElementBudgetExceeded::Elements { limit: 50_000 })
        );
        assert!(parse_bounded(&page, 1_000_000).is_ok());
    }

    #[test]
    fn deep_nesting_stops_at_the_depth_cap() {
        let deep = format!("{}x", "<div>".repeat(100_000));
        let started = std::time::Instant::now();
        assert_eq!(
            parse_bounded(&deep, 1_000_000).err(),
            Some(ElementBudgetExceeded::Depth { limit: MAX_DEPTH })
        );
        assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
        let fine = format!("{}x", "<div>".repeat(400));
        assert!(parse_bounded(&fine, 1_000_000).is_ok());
    }
}
