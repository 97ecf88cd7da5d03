//! A live CIB (`cibadmin --query`, or the file Pacemaker keeps on disk) parsed into the element
//! tree the desired configuration renders to, with the version a patch must name.

use std::fmt;

use super::line::Schema;
use super::xml::Element;
use crate::error::{Error, Result};
use crate::system::{Cmd, Probe};

/// `admin_epoch.epoch.num_updates`: every change to the configuration raises the epoch, every
/// status update num_updates. A patch applies only to the version it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CibVersion {
    pub admin_epoch: u64,
    pub epoch: u64,
    pub num_updates: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub version: CibVersion,
    /// `validate-with` as written (`pacemaker-3.9`).
    pub validate_with: String,
    pub configuration: Element,
}

/// The whole CIB from the cluster (fails where Pacemaker does not run).
pub fn query() -> Cmd {
    Cmd::new("cibadmin").arg("--query")
}

impl Live {
    /// The live CIB; a failing or unparsable query is an error.
    pub fn read(probe: &dyn Probe) -> Result<Live> {
        let out = probe.query(&query())?;
        if !out.success() {
            return Err(Error::step(format!("cibadmin --query failed ({:?}): {}", out.code, out.tail())));
        }
        Live::parse(&out.stdout).map_err(|e| e.context("cibadmin --query"))
    }

    pub fn parse(xml: &str) -> Result<Live> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| Error::step(format!("the CIB is not XML: {e}")))?;
        let root = doc.root_element();
        if !root.has_tag_name("cib") {
            return Err(Error::step(format!("the CIB's root is <{}>, not <cib>", root.tag_name().name())));
        }
        let number = |name: &str| -> Result<u64> {
            let value = root.attribute(name).unwrap_or("0");
            value.parse().map_err(|_| Error::step(format!("the CIB's {name} is {value:?}, not a number")))
        };
        let version = CibVersion {
            admin_epoch: number("admin_epoch")?,
            epoch: number("epoch")?,
            num_updates: number("num_updates")?,
        };
        let configuration = root
            .children()
            .find(|n| n.has_tag_name("configuration"))
            .map(Element::from_node)
            .ok_or_else(|| Error::step("the CIB has no <configuration>"))?;
        Ok(Live {
            version,
            validate_with: root.attribute("validate-with").unwrap_or_default().to_string(),
            configuration,
        })
    }

    /// The CIB a cluster starts with (`cibadmin --empty`): what a plan made before the cluster
    /// runs compares with.
    pub fn empty() -> Live {
        Live {
            version: CibVersion { admin_epoch: 0, epoch: 0, num_updates: 0 },
            validate_with: String::new(),
            configuration: Element::new("configuration")
                .child(Element::new("crm_config"))
                .child(Element::new("nodes"))
                .child(Element::new("resources"))
                .child(Element::new("constraints")),
        }
    }

    pub fn schema(&self) -> Option<Schema> {
        Schema::parse(&self.validate_with)
    }

    /// Whether a primitive `id` is configured (anywhere under `<resources>`).
    pub fn has_primitive(&self, id: &str) -> bool {
        self.configuration
            .find("resources")
            .is_some_and(|r| r.descendants().iter().any(|e| e.name == "primitive" && e.id() == Some(id)))
    }
}

impl fmt::Display for CibVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.admin_epoch, self.epoch, self.num_updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_schema_and_configuration() {
        let live = Live::parse(
            "<cib crm_feature_set=\"3.16.1\" validate-with=\"pacemaker-3.9\" epoch=\"12\" num_updates=\"4\" admin_epoch=\"0\">\
             <configuration><crm_config/><nodes/><resources><clone id=\"c\"><primitive id=\"drbd_wp\"/></clone></resources>\
             <constraints/></configuration><status/></cib>",
        )
        .unwrap();
        assert_eq!(live.version.to_string(), "0.12.4");
        assert_eq!(live.schema(), Some(Schema(3, 9)));
        assert!(live.has_primitive("drbd_wp") && !live.has_primitive("c") && !live.has_primitive("x"));
    }

    #[test]
    fn anything_else_is_an_error() {
        for (xml, want) in [
            ("Could not connect", "not XML"),
            ("<resources/>", "not <cib>"),
            ("<cib epoch=\"x\"><configuration/></cib>", "epoch is \"x\""),
            ("<cib/>", "no <configuration>"),
        ] {
            let e = Live::parse(xml).unwrap_err();
            assert!(e.to_string().contains(want), "{xml}: {e}");
        }
    }
}
