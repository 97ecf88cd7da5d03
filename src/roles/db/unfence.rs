//! db.cluster.unfence: drop DRBD's fencing constraint once both disks are UpToDate again.
//!
//! When a node loses its peer, `crm-fence-peer` puts a `drbd-fence-by-handler-<res>-…`
//! location constraint in the CIB that forbids promotion anywhere but on itself; the
//! `after-resync-target` handler (`crm-unfence-peer`) on the peer removes it when the resync
//! ends. That handler fails when it cannot reach the CIB: a replaced VM resyncs before hainit
//! has started Pacemaker on it, and under load the controller may not answer within the
//! handler's 3.6 s (both seen in the lab's repair scenario). The constraint then stays and the
//! node can never take over. Connected with both disks UpToDate is exactly when the handler
//! would have removed it, so hainit does the same; while this node is the resync target it
//! waits for the end of the resync (`db.cluster_timeout_secs`, then exit 3 and hainit-boot
//! retries). Last of the db steps: the wait delays nothing else. DRBD's state is read right
//! before the decision, and the delete matches the whole constraint as read (crm-fence-peer
//! reuses its id), so one the handler has put back meanwhile stays.

use super::facts::{drbd_primitive, drbd_state};
use crate::cib::xml::Element;
use crate::dialect::crm_mon::EXIT_NOT_CONNECTED;
use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::system::{Cmd, Probe};
use std::time::Duration;

/// The live CIB's constraints (exit 102 where Pacemaker does not run); read here and by `status`.
pub fn constraints_query() -> Cmd {
    Cmd::new("cibadmin").args(["--query", "--scope", "constraints"])
}

/// The fencing constraints DRBD's handlers put on the promotable clone `clone`, whole (their
/// rule names the node that holds the current data).
pub fn fence_constraints(constraints_xml: &str, clone: &str) -> Result<Vec<Element>> {
    let doc = roxmltree::Document::parse(constraints_xml)
        .map_err(|e| Error::step(format!("cibadmin --query --scope constraints: not XML: {e}")))?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("rsc_location") && n.attribute("rsc") == Some(clone))
        .filter(|n| n.attribute("id").is_some_and(|id| id.starts_with("drbd-fence-by-handler-")))
        .map(Element::from_node)
        .collect())
}

/// `cibadmin --delete` of exactly `constraint` as it was read: crm-fence-peer reuses the id, so
/// a constraint the handler has put back meanwhile (for the other node, say) does not match
/// and stays. No match is not an error (exit 0); the next check sees what is there.
fn delete_exactly(constraint: &Element) -> Result<Cmd> {
    let xpath = constraint.xpath_exact().ok_or_else(|| {
        Error::step(format!("fencing constraint {:?} holds a value XPath cannot quote", constraint.id()))
    })?;
    Ok(Cmd::new("cibadmin").args(["--delete", "--xpath", &xpath]))
}

pub struct UnfenceStep;

impl Step for UnfenceStep {
    fn id(&self) -> &'static str {
        "db.cluster.unfence"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let out = probe.query(&constraints_query())?;
        match out.code {
            Some(0) => {}
            // Pacemaker does not run here: no CIB to read, nothing to remove.
            Some(EXIT_NOT_CONNECTED) => return Ok(Vec::new()),
            _ => return Err(Error::step(format!("{}: failed ({:?}): {}", constraints_query(), out.code, out.tail()))),
        }
        let clone = cx.platform.pacemaker.line().clone_id(&drbd_primitive(cx));
        let stale = fence_constraints(&out.stdout, &clone)?;
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        // DRBD's state is read after the constraints, right before deciding on them.
        let Some(state) = drbd_state(cx, probe)? else { return Ok(Vec::new()) };
        let receiving = state.is_receiving_resync();
        if !state.is_in_sync() && !receiving {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = stale.iter().filter_map(Element::id).collect();
        if receiving {
            // The same words on every poll: a changed `what` is logged as a new wait.
            return Ok(vec![Action::wait(
                format!("the end of the DRBD resync to this node (then {} lifts)", ids.join(", ")),
                Duration::from_secs(cx.config.db.cluster_timeout_secs),
            )]);
        }
        stale
            .iter()
            .map(|c| {
                Ok(Action::run(
                    delete_exactly(c)?,
                    format!(
                        "both DRBD disks are UpToDate: {} is stale (its unfence handler did not remove it)",
                        c.id().unwrap_or_default()
                    ),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSTRAINTS: &str = r##"<constraints>
  <rsc_location rsc="drbd_wp-clone" id="drbd-fence-by-handler-wp-drbd_wp-clone">
    <rule role="Promoted" score="-INFINITY" id="drbd-fence-by-handler-wp-rule-drbd_wp-clone">
      <expression attribute="#uname" operation="ne" value="db-b" id="drbd-fence-by-handler-wp-expr-1"/>
    </rule>
  </rsc_location>
  <rsc_location rsc="drbd_other-clone" id="drbd-fence-by-handler-other-drbd_other-clone"/>
  <rsc_colocation id="colocation-g_db" rsc="g_db" with-rsc="drbd_wp-clone" score="INFINITY"/>
  <rsc_location id="cli-ban-g_db-on-db-a" rsc="g_db" node="db-a" score="-INFINITY"/>
</constraints>"##;

    #[test]
    fn only_the_handlers_constraints_of_our_resource() {
        let found = fence_constraints(CONSTRAINTS, "drbd_wp-clone").unwrap();
        assert_eq!(
            found.iter().map(|e| e.id().unwrap()).collect::<Vec<_>>(),
            ["drbd-fence-by-handler-wp-drbd_wp-clone"]
        );
        assert_eq!(
            delete_exactly(&found[0]).unwrap().argv_redacted()[3],
            "//rsc_location[@rsc='drbd_wp-clone' and @id='drbd-fence-by-handler-wp-drbd_wp-clone']\
             [rule[@role='Promoted' and @score='-INFINITY' and @id='drbd-fence-by-handler-wp-rule-drbd_wp-clone']\
             [expression[@attribute='#uname' and @operation='ne' and @value='db-b' and @id='drbd-fence-by-handler-wp-expr-1']]]"
        );
        assert!(fence_constraints(CONSTRAINTS, "ms_drbd_wp").unwrap().is_empty());
        assert!(fence_constraints("<constraints/>", "drbd_wp-clone").unwrap().is_empty());
        assert!(fence_constraints("garbage <", "drbd_wp-clone").is_err());
    }
}
