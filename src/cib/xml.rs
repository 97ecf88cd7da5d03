//! The CIB's element tree: what the desired configuration renders to and what a live CIB parses
//! into, so the two compare as one type.

use std::fmt::Write as _;

/// A comment in a live CIB: never ours, but it counts in the positions a patch names.
pub const COMMENT: &str = "#comment";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    /// In document order.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
}

impl Element {
    pub fn new(name: impl Into<String>) -> Self {
        Element { name: name.into(), attrs: Vec::new(), children: Vec::new() }
    }

    pub fn attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attrs.push((name.into(), value.into()));
        self
    }

    pub fn child(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.children.extend(children);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn id(&self) -> Option<&str> {
        self.get("id")
    }

    pub fn is_comment(&self) -> bool {
        self.name == COMMENT
    }

    /// The first child named `name`.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// This element and everything below it, depth first.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut all = vec![self];
        for c in &self.children {
            all.extend(c.descendants());
        }
        all
    }

    /// The same element without its children (what a patch's `change-result` carries).
    pub fn shallow(&self) -> Element {
        Element { name: self.name.clone(), attrs: self.attrs.clone(), children: Vec::new() }
    }

    /// An XPath that selects this element only while it has exactly these attribute values and
    /// children (more may have been added); `None` when a value holds a `'`, which XPath 1.0
    /// cannot quote here.
    pub fn xpath_exact(&self) -> Option<String> {
        Some(format!("//{}", self.predicate()?))
    }

    fn predicate(&self) -> Option<String> {
        let mut out = self.name.clone();
        if !self.attrs.is_empty() {
            let tests: Option<Vec<String>> =
                self.attrs.iter().map(|(k, v)| (!v.contains('\'')).then(|| format!("@{k}='{v}'"))).collect();
            out.push_str(&format!("[{}]", tests?.join(" and ")));
        }
        for c in self.children.iter().filter(|c| !c.is_comment()) {
            out.push_str(&format!("[{}]", c.predicate()?));
        }
        Some(out)
    }

    /// Indented XML, two spaces a level, one element a line.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        if self.is_comment() {
            return;
        }
        let _ = write!(out, "{pad}<{}", self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"{}\"", escape(v));
        }
        if self.children.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push_str(">\n");
        for c in &self.children {
            c.write(out, depth + 1);
        }
        let _ = writeln!(out, "{pad}</{}>", self.name);
    }

    /// Elements and comments below `node`; text (the indentation of `cibadmin --query`) is not
    /// part of a CIB.
    pub fn from_node(node: roxmltree::Node) -> Element {
        Element {
            name: node.tag_name().name().to_string(),
            attrs: node.attributes().map(|a| (a.name().to_string(), a.value().to_string())).collect(),
            children: node
                .children()
                .filter_map(|c| {
                    if c.is_element() {
                        Some(Element::from_node(c))
                    } else if c.is_comment() {
                        Some(Element::new(COMMENT))
                    } else {
                        None
                    }
                })
                .collect(),
        }
    }
}

/// An attribute value as XML text.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_back_the_same_tree() {
        let e = Element::new("primitive")
            .attr("id", "p")
            .child(Element::new("nvpair").attr("name", "map").attr("value", "a:b;c:\"d\" & <e>"));
        let text = e.to_xml();
        assert_eq!(
            text,
            "<primitive id=\"p\">\n  <nvpair name=\"map\" value=\"a:b;c:&quot;d&quot; &amp; &lt;e&gt;\"/>\n</primitive>\n"
        );
        let doc = roxmltree::Document::parse(&text).unwrap();
        assert_eq!(Element::from_node(doc.root_element()), e);
    }

    #[test]
    fn an_exact_xpath_names_every_attribute_and_child() {
        let e = Element::new("rsc_location").attr("id", "f").attr("rsc", "c").child(
            Element::new("rule").attr("score", "-INFINITY").child(Element::new("expression").attr("value", "db-b")),
        );
        assert_eq!(
            e.xpath_exact().unwrap(),
            "//rsc_location[@id='f' and @rsc='c'][rule[@score='-INFINITY'][expression[@value='db-b']]]"
        );
        assert_eq!(Element::new("x").attr("v", "it's").xpath_exact(), None);
    }

    #[test]
    fn comments_are_kept_as_placeholders_and_text_is_dropped() {
        let doc = roxmltree::Document::parse("<a>\n  <!-- x -->\n  <b id=\"1\"/>\n</a>").unwrap();
        let a = Element::from_node(doc.root_element());
        assert_eq!(a.children.len(), 2);
        assert!(a.children[0].is_comment());
        assert_eq!(a.children[1].id(), Some("1"));
    }
}
