//! Desired configuration vs live CIB → the changes that make the live one hold what hainit wants,
//! touching nothing else.
//!
//! Elements are matched among their siblings by [`Key`]: an attribute by its name, an operation
//! by name and interval (as Pacemaker keys them), anything else by id. What hainit owns is the
//! closed set of key paths it can ever generate for this cluster ([`Owned`], from every variant
//! of the desired configuration): a live element on such a path that is not wanted any more is
//! removed; one on any other path (an operator's resource, constraint, meta attribute, the DC's
//! own cluster options, DRBD's fencing constraint) is never touched. Every attribute of an owned
//! element is hainit's.

use std::collections::BTreeSet;

use super::xml::{Element, COMMENT};

/// How an element is known among its siblings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// `nvpair` by its name: the id is whoever made it's spelling (pcs shortens some).
    Nvpair(String),
    /// `op` by name and interval (milliseconds when it parses).
    Op(String, String),
    Id(String),
    /// A section without an id (`crm_config`, `resources`, `operations`).
    Tag(String),
    Comment,
}

pub fn key(e: &Element) -> Key {
    match e.name.as_str() {
        COMMENT => Key::Comment,
        "nvpair" => Key::Nvpair(e.get("name").unwrap_or_default().to_string()),
        "op" => Key::Op(e.get("name").unwrap_or_default().to_string(), interval_ms(e.get("interval").unwrap_or("0"))),
        _ => match e.id() {
            Some(id) => Key::Id(id.to_string()),
            None => Key::Tag(e.name.clone()),
        },
    }
}

/// `29s`, `29000ms`, `29`, `1min` → `29000`-style milliseconds; anything else as written.
fn interval_ms(spec: &str) -> String {
    let digits = spec.trim().bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = spec.trim().split_at(digits);
    let factor = match unit.trim() {
        "ms" | "msec" => Some(1),
        "" | "s" | "sec" => Some(1000),
        "m" | "min" => Some(60_000),
        "h" | "hr" => Some(3_600_000),
        _ => None,
    };
    match (number.parse::<u64>(), factor) {
        (Ok(n), Some(f)) => (n * f).to_string(),
        _ => spec.to_string(),
    }
}

/// Key paths below `<configuration>` that hainit can generate here.
#[derive(Debug, Clone, Default)]
pub struct Owned(BTreeSet<Vec<Key>>);

impl Owned {
    /// Everything in these rendered configurations.
    pub fn of<'a>(configurations: impl IntoIterator<Item = &'a Element>) -> Owned {
        let mut owned = Owned::default();
        for c in configurations {
            owned.collect(c, &mut Vec::new());
        }
        owned
    }

    fn collect(&mut self, e: &Element, path: &mut Vec<Key>) {
        for c in &e.children {
            path.push(key(c));
            self.0.insert(path.clone());
            self.collect(c, path);
            path.pop();
        }
    }

    pub fn contains(&self, path: &[Key]) -> bool {
        self.0.contains(path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrChange {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One change, addressed the way a CIB patch addresses it (`/cib/configuration/…` with
/// `[@id='…']` steps), with what it means in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert `element` (with everything below it) as child number `position` of `parent`.
    Create {
        parent: String,
        position: usize,
        element: Element,
        what: String,
    },
    Delete {
        path: String,
        what: String,
    },
    /// Give the element at `path` exactly the attributes of `result`.
    Modify {
        path: String,
        attrs: Vec<AttrChange>,
        result: Element,
        what: String,
    },
}

impl Change {
    pub fn what(&self) -> &str {
        match self {
            Change::Create { what, .. } | Change::Delete { what, .. } | Change::Modify { what, .. } => what,
        }
    }
}

/// The changes that turn `live` (a `<configuration>`) into one holding `desired`.
pub fn diff(desired: &Element, live: &Element, owned: &Owned) -> Vec<Change> {
    let mut out = Vec::new();
    let at = Place { path: Vec::new(), xpath: "/cib/configuration".into(), context: String::new() };
    children(desired, live, &at, owned, &mut out);
    out
}

/// Where two elements being compared sit.
struct Place {
    path: Vec<Key>,
    xpath: String,
    /// What a person calls the surroundings: `lb_probe`, `property`, `drbd_wp-clone meta`.
    context: String,
}

impl Place {
    fn below(&self, parent: &Element, live: &Element) -> Place {
        let mut path = self.path.clone();
        path.push(key(live));
        let step = match live.id() {
            Some(id) => format!("{}[@id='{id}']", live.name),
            None => live.name.clone(),
        };
        // A resource is known by its id alone; a set adds a word to what holds it.
        let resource = matches!(live.name.as_str(), "primitive" | "group" | "clone" | "master");
        let context = match label(parent, live) {
            Some(l) if resource || self.context.is_empty() => l,
            Some(l) => format!("{} {l}", self.context),
            None => self.context.clone(),
        };
        Place { path, xpath: format!("{}/{step}", self.xpath), context }
    }
}

/// The word for an element in a change's description, if it adds one.
fn label(parent: &Element, e: &Element) -> Option<String> {
    match e.name.as_str() {
        "primitive" | "group" | "clone" | "master" => e.id().map(str::to_string),
        "cluster_property_set" => Some("property".into()),
        "rsc_defaults" | "op_defaults" => Some(e.name.clone()),
        "meta_attributes" if !matches!(parent.name.as_str(), "rsc_defaults" | "op_defaults") => Some("meta".into()),
        _ => None,
    }
}

fn children(d: &Element, l: &Element, at: &Place, owned: &Owned, out: &mut Vec<Change>) {
    // Pair each desired child with the first live sibling of the same key not taken yet.
    let mut taken = vec![false; l.children.len()];
    let mut pairs: Vec<Option<usize>> = d
        .children
        .iter()
        .map(|dc| {
            let k = key(dc);
            let i = l.children.iter().enumerate().position(|(i, lc)| !taken[i] && key(lc) == k)?;
            taken[i] = true;
            Some(i)
        })
        .collect();
    // A different kind under the same id, or a group whose members run in another order, is
    // replaced whole.
    for (di, pair) in pairs.iter_mut().enumerate() {
        if let Some(li) = *pair {
            let (dc, lc) = (&d.children[di], &l.children[li]);
            if dc.name != lc.name || (dc.name == "group" && !same_order(dc, lc)) {
                taken[li] = false;
                *pair = None;
            }
        }
    }

    let mut slots: Vec<Option<usize>> = Vec::new();
    for (li, lc) in l.children.iter().enumerate() {
        let mut path = at.path.clone();
        path.push(key(lc));
        if !taken[li] && owned.contains(&path) {
            out.push(Change::Delete { path: at.below(l, lc).xpath, what: removal(at, lc) });
        } else {
            slots.push(Some(li));
        }
    }

    let mut cursor = 0;
    for (dc, pair) in d.children.iter().zip(&pairs) {
        match pair {
            Some(li) => {
                let lc = &l.children[*li];
                let here = at.below(l, lc);
                if let Some(m) = modify(dc, lc, &here) {
                    out.push(m);
                }
                children(dc, lc, &here, owned, out);
                let slot = slots.iter().position(|s| *s == Some(*li)).unwrap_or(cursor);
                cursor = cursor.max(slot + 1);
            }
            None => {
                slots.insert(cursor, None);
                out.push(Change::Create {
                    parent: at.xpath.clone(),
                    position: cursor,
                    element: dc.clone(),
                    what: creation(at, dc),
                });
                cursor += 1;
            }
        }
    }
}

/// Whether the members `d` wants appear in `l` in the same order.
fn same_order(d: &Element, l: &Element) -> bool {
    let at: Vec<usize> =
        d.children.iter().filter_map(|dc| l.children.iter().position(|lc| key(lc) == key(dc))).collect();
    at.windows(2).all(|w| w[0] < w[1])
}

fn modify(d: &Element, l: &Element, here: &Place) -> Option<Change> {
    // The live id stays (an nvpair or op is matched by name, whoever spelled its id).
    let mut result = d.shallow();
    match (l.id(), result.attrs.iter_mut().find(|(k, _)| k == "id")) {
        (Some(id), Some((_, v))) => *v = id.to_string(),
        (Some(id), None) => result.attrs.insert(0, ("id".into(), id.to_string())),
        (None, _) => {}
    }
    let mut attrs: Vec<AttrChange> = Vec::new();
    for (k, v) in &result.attrs {
        if l.get(k) != Some(v.as_str()) {
            attrs.push(AttrChange { name: k.clone(), old: l.get(k).map(str::to_string), new: Some(v.clone()) });
        }
    }
    for (k, v) in &l.attrs {
        if result.get(k).is_none() {
            attrs.push(AttrChange { name: k.clone(), old: Some(v.clone()), new: None });
        }
    }
    if attrs.is_empty() {
        return None;
    }
    let what = modification(here, d, &attrs);
    Some(Change::Modify { path: here.xpath.clone(), attrs, result, what })
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(none)")
}

fn joined(context: &str, rest: &str) -> String {
    if context.is_empty() {
        rest.to_string()
    } else {
        format!("{context} {rest}")
    }
}

fn op_name(e: &Element) -> String {
    format!("op {} {}", e.get("name").unwrap_or_default(), e.get("interval").unwrap_or("0"))
}

fn named(e: &Element) -> String {
    match e.id() {
        Some(id) => format!("{} {id}", e.name),
        None => e.name.clone(),
    }
}

fn modification(here: &Place, e: &Element, attrs: &[AttrChange]) -> String {
    // `here.context` already names the element itself when it is a resource or a set.
    match e.name.as_str() {
        "nvpair" if attrs.iter().all(|a| a.name == "value") => {
            let a = &attrs[0];
            joined(
                &here.context,
                &format!("{}: {} → {}", e.get("name").unwrap_or_default(), show(&a.old), show(&a.new)),
            )
        }
        _ => {
            let subject = match e.name.as_str() {
                "op" => op_name(e),
                "nvpair" => e.get("name").unwrap_or_default().to_string(),
                "primitive" | "group" | "clone" | "master" | "cluster_property_set" => String::new(),
                _ => named(e),
            };
            let list: Vec<String> =
                attrs.iter().map(|a| format!("{} {} → {}", a.name, show(&a.old), show(&a.new))).collect();
            let head = joined(&here.context, &subject);
            format!("{}: {}", head.trim(), list.join(", "))
        }
    }
}

fn creation(at: &Place, e: &Element) -> String {
    let within = if at.context.is_empty() { String::new() } else { format!(" to {}", at.context) };
    match e.name.as_str() {
        "nvpair" => format!(
            "set {}",
            joined(
                &at.context,
                &format!("{}={}", e.get("name").unwrap_or_default(), e.get("value").unwrap_or_default())
            )
        ),
        "op" => format!("add {}", joined(&at.context, &op_name(e))),
        // A set (or a section of sets) is worth listing; a resource is known by its id.
        "primitive" | "group" | "clone" | "master" => format!("add {}{within}", named(e)),
        _ if e.children.iter().any(|c| c.name == "nvpair" || c.name.ends_with("attributes"))
            && e.descendants().iter().skip(1).all(|n| n.name == "nvpair" || n.name.ends_with("attributes")) =>
        {
            let pairs: Vec<String> = e
                .descendants()
                .iter()
                .filter(|n| n.name == "nvpair")
                .map(|n| format!("{}={}", n.get("name").unwrap_or_default(), n.get("value").unwrap_or_default()))
                .collect();
            format!("add {}{within} ({})", named(e), pairs.join(", "))
        }
        _ => format!("add {}{within}", named(e)),
    }
}

fn removal(at: &Place, e: &Element) -> String {
    match e.name.as_str() {
        "nvpair" => format!(
            "unset {} (was {})",
            joined(&at.context, e.get("name").unwrap_or_default()),
            e.get("value").unwrap_or_default()
        ),
        "op" => format!("remove {}", joined(&at.context, &op_name(e))),
        _ => format!("remove {}", named(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nv(name: &str, value: &str, id: &str) -> Element {
        Element::new("nvpair").attr("id", id).attr("name", name).attr("value", value)
    }

    fn config(properties: Vec<Element>, resources: Vec<Element>) -> Element {
        Element::new("configuration")
            .child(
                Element::new("crm_config").child(
                    Element::new("cluster_property_set").attr("id", "cib-bootstrap-options").children(properties),
                ),
            )
            .child(Element::new("resources").children(resources))
    }

    fn prim(id: &str, port: &str) -> Element {
        Element::new("primitive").attr("id", id).attr("class", "ocf").child(
            Element::new("instance_attributes").attr("id", format!("{id}-instance_attributes")).child(nv(
                "port",
                port,
                &format!("{id}-instance_attributes-port"),
            )),
        )
    }

    #[test]
    fn equal_trees_need_nothing_and_foreign_elements_stay() {
        let desired =
            config(vec![nv("stonith-enabled", "true", "cib-bootstrap-options-stonith-enabled")], vec![prim("a", "1")]);
        let owned = Owned::of([&desired]);
        let mut live = desired.clone();
        // The DC's own options, an operator's resource and comment, an nvpair id pcs spelled otherwise.
        live.children[0].children[0].children.push(nv("dc-version", "2.1.5", "cib-bootstrap-options-dc-version"));
        live.children[0].children[0].children[0] = nv("stonith-enabled", "true", "pcs-spelled-id");
        live.children[1].children.push(prim("operators", "9"));
        live.children[1].children.insert(0, Element::new(COMMENT));
        assert_eq!(diff(&desired, &live, &owned), []);
    }

    #[test]
    fn a_changed_value_is_one_modify_of_that_nvpair() {
        let desired = config(vec![], vec![prim("lb_probe", "62501")]);
        let live = config(vec![], vec![prim("lb_probe", "62500")]);
        let changes = diff(&desired, &live, &Owned::of([&desired]));
        assert_eq!(changes.len(), 1, "{changes:#?}");
        let Change::Modify { path, attrs, result, what } = &changes[0] else { panic!("{changes:?}") };
        assert_eq!(
            path,
            "/cib/configuration/resources/primitive[@id='lb_probe']/instance_attributes[@id='lb_probe-instance_attributes']\
             /nvpair[@id='lb_probe-instance_attributes-port']"
        );
        assert_eq!(attrs, &[AttrChange { name: "value".into(), old: Some("62500".into()), new: Some("62501".into()) }]);
        assert_eq!(result.get("id"), Some("lb_probe-instance_attributes-port"));
        assert_eq!(what, "lb_probe port: 62500 → 62501");
    }

    #[test]
    fn owned_but_unwanted_is_removed_and_new_things_are_created_in_place() {
        let fence_sbd = prim("fence_sbd", "0");
        let fence_azure = prim("fence_azure", "0");
        let with_sbd = config(vec![nv("stonith-enabled", "true", "x")], vec![prim("a", "1"), fence_sbd]);
        let with_azure = config(vec![nv("stonith-enabled", "true", "x")], vec![prim("a", "1"), fence_azure]);
        let owned = Owned::of([&with_sbd, &with_azure]);
        let mut live = with_sbd.clone();
        live.children[1].children.insert(1, prim("operators", "9"));
        let changes = diff(&with_azure, &live, &owned);
        let whats: Vec<&str> = changes.iter().map(Change::what).collect();
        assert_eq!(whats, ["remove primitive fence_sbd", "add primitive fence_azure"], "{changes:#?}");
        let Change::Create { parent, position, .. } = &changes[1] else { panic!() };
        // Right after `a`, the desired sibling before it.
        assert_eq!((parent.as_str(), *position), ("/cib/configuration/resources", 1));
    }

    #[test]
    fn operations_match_by_name_and_interval() {
        let op = |interval: &str, timeout: &str| {
            Element::new("op")
                .attr("id", "x")
                .attr("name", "monitor")
                .attr("interval", interval)
                .attr("timeout", timeout)
        };
        assert_eq!(key(&op("29s", "1")), key(&op("29000ms", "2")));
        assert_ne!(key(&op("29s", "1")), key(&op("31s", "1")));
        let wrap = |o: Element| {
            config(vec![], vec![Element::new("primitive").attr("id", "d").child(Element::new("operations").child(o))])
        };
        let (desired, live) = (wrap(op("29s", "60s")), wrap(op("29s", "20s")));
        let changes = diff(&desired, &live, &Owned::of([&desired]));
        assert_eq!(changes.iter().map(Change::what).collect::<Vec<_>>(), ["d op monitor 29s: timeout 20s → 60s"]);
    }

    #[test]
    fn a_group_in_another_order_is_replaced_and_a_kind_change_too() {
        let group = |ids: &[&str]| Element::new("group").attr("id", "g").children(ids.iter().map(|i| prim(i, "1")));
        let desired = config(vec![], vec![group(&["fs", "db", "probe"])]);
        let live = config(vec![], vec![group(&["db", "fs", "probe"])]);
        let changes = diff(&desired, &live, &Owned::of([&desired]));
        let whats: Vec<&str> = changes.iter().map(Change::what).collect();
        assert_eq!(whats, ["remove group g", "add group g"], "{changes:#?}");
        let mut master = group(&["fs"]);
        master.name = "master".into();
        let live = config(vec![], vec![master]);
        let changes = diff(&desired, &live, &Owned::of([&desired]));
        assert_eq!(changes.iter().map(Change::what).collect::<Vec<_>>(), ["remove master g", "add group g"]);
    }

    #[test]
    fn a_missing_section_is_created_whole() {
        let desired =
            Element::new("configuration").child(Element::new("rsc_defaults").child(
                Element::new("meta_attributes").attr("id", "rd").child(nv("resource-stickiness", "100", "rd-rs")),
            ));
        let live = Element::new("configuration").child(Element::new("crm_config"));
        let changes = diff(&desired, &live, &Owned::of([&desired]));
        assert_eq!(
            changes.iter().map(Change::what).collect::<Vec<_>>(),
            ["add rsc_defaults (resource-stickiness=100)"]
        );
        let Change::Create { position, .. } = &changes[0] else { panic!() };
        assert_eq!(*position, 0);
    }

    #[test]
    fn intervals() {
        assert_eq!(interval_ms("0"), "0");
        assert_eq!(interval_ms("0s"), "0");
        assert_eq!(interval_ms("3600s"), "3600000");
        assert_eq!(interval_ms("1min"), "60000");
        assert_eq!(interval_ms("P1D"), "P1D");
    }
}
