//! Changes as one CIB patch (crm_diff's v2 format) for `cibadmin --patch`, which applies all of
//! them or none. The patch names the version it was made from: Pacemaker refuses it (exit 103,
//! "Update was older than existing configuration") when the CIB has changed since — a status
//! update included — so a concurrent change is never overwritten. The target version is the next
//! epoch (a patch that does not raise the version is refused too).

use super::diff::Change;
use super::live::CibVersion;
use super::xml::{escape, Element};

/// `cibadmin --patch`'s exit status when the CIB is not at the patch's source version.
pub const EXIT_OLD_DATA: i32 = 103;

pub fn render(source: CibVersion, changes: &[Change]) -> String {
    let version = |tag: &str, v: CibVersion| {
        Element::new(tag)
            .attr("admin_epoch", v.admin_epoch.to_string())
            .attr("epoch", v.epoch.to_string())
            .attr("num_updates", v.num_updates.to_string())
    };
    let target = CibVersion { admin_epoch: source.admin_epoch, epoch: source.epoch + 1, num_updates: 0 };
    let mut out = String::from("<diff format=\"2\">\n");
    out.push_str(&indent(
        &Element::new("version").child(version("source", source)).child(version("target", target)).to_xml(),
        1,
    ));
    for change in changes {
        out.push_str(&indent(&change_xml(change), 1));
    }
    out.push_str("</diff>\n");
    out
}

fn change_xml(change: &Change) -> String {
    match change {
        Change::Create { parent, position, element, .. } => format!(
            "<change operation=\"create\" path=\"{}\" position=\"{position}\">\n{}</change>\n",
            escape(parent),
            indent(&element.to_xml(), 1)
        ),
        Change::Delete { path, .. } => format!("<change operation=\"delete\" path=\"{}\"/>\n", escape(path)),
        Change::Modify { path, attrs, result, .. } => {
            let list = Element::new("change-list").children(attrs.iter().map(|a| match &a.new {
                Some(v) => Element::new("change-attr").attr("name", &a.name).attr("operation", "set").attr("value", v),
                None => Element::new("change-attr").attr("name", &a.name).attr("operation", "unset"),
            }));
            let result = Element::new("change-result").child(result.shallow());
            format!(
                "<change operation=\"modify\" path=\"{}\">\n{}{}</change>\n",
                escape(path),
                indent(&list.to_xml(), 1),
                indent(&result.to_xml(), 1)
            )
        }
    }
}

fn indent(text: &str, levels: usize) -> String {
    let pad = "  ".repeat(levels);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cib::diff::AttrChange;

    #[test]
    fn the_patch_names_its_source_and_the_next_epoch() {
        let nv = Element::new("nvpair").attr("id", "p-port").attr("name", "port").attr("value", "2");
        let changes = [
            Change::Delete { path: "/cib/configuration/resources/primitive[@id='x']".into(), what: String::new() },
            Change::Modify {
                path: "/cib/configuration/resources/primitive[@id='p']/instance_attributes[@id='p-ia']/nvpair[@id='p-port']"
                    .into(),
                attrs: vec![AttrChange { name: "value".into(), old: Some("1".into()), new: Some("2".into()) }],
                result: nv,
                what: String::new(),
            },
            Change::Create {
                parent: "/cib/configuration/constraints".into(),
                position: 0,
                element: Element::new("rsc_order").attr("id", "o"),
                what: String::new(),
            },
        ];
        let text = render(CibVersion { admin_epoch: 0, epoch: 7, num_updates: 3 }, &changes);
        assert_eq!(
            text,
            r#"<diff format="2">
  <version>
    <source admin_epoch="0" epoch="7" num_updates="3"/>
    <target admin_epoch="0" epoch="8" num_updates="0"/>
  </version>
  <change operation="delete" path="/cib/configuration/resources/primitive[@id=&apos;x&apos;]"/>
  <change operation="modify" path="/cib/configuration/resources/primitive[@id=&apos;p&apos;]/instance_attributes[@id=&apos;p-ia&apos;]/nvpair[@id=&apos;p-port&apos;]">
    <change-list>
      <change-attr name="value" operation="set" value="2"/>
    </change-list>
    <change-result>
      <nvpair id="p-port" name="port" value="2"/>
    </change-result>
  </change>
  <change operation="create" path="/cib/configuration/constraints" position="0">
    <rsc_order id="o"/>
  </change>
</diff>
"#
        );
        assert!(roxmltree::Document::parse(&text).is_ok());
    }
}
