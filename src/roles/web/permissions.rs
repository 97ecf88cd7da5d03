//! web.permissions.tree: the WordPress tree owned by the platform's web user, directories 0755,
//! files 0644 (never 777); wp-config.php keeps its own root:<web group> 0640.

use tracing::debug;

use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::system::tree::count_differences;
use crate::system::{Probe, TreeSpec};

use super::wp_config;

pub fn spec(cx: &Context) -> TreeSpec {
    let web = &cx.platform.web;
    TreeSpec {
        path: cx.config.web.docroot.trim_end_matches('/').to_string(),
        owner: web.web_user.into(),
        group: web.web_group.into(),
        dir_mode: 0o755,
        file_mode: 0o644,
        except: vec![wp_config::path(cx)],
    }
}

pub struct PermissionsStep;

impl Step for PermissionsStep {
    fn id(&self) -> &'static str {
        "web.permissions.tree"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let spec = spec(cx);
        // No tree yet (a plan before the first unpack): it will need its owner once it exists.
        match count_differences(probe, &spec)? {
            Some(0) => Ok(Vec::new()),
            differ => {
                debug!(path = %spec.path, differ = ?differ, "entries with another owner or mode");
                Ok(vec![Action::Tree(spec)])
            }
        }
    }
}
