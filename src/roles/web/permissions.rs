//! web.permissions.tree: the WordPress code owned by root, directories 0755 and files 0644, so
//! PHP (the platform's web user) reads it and never writes it: a hole in a plugin cannot plant
//! code. Only the uploads (share.rs: the shared storage, PHP's) and wp-config.php (its own
//! root:<web group> 0640) are left out. Plugins and themes come with the image (docs/web-role.md).

use tracing::debug;

use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::system::tree::count_differences;
use crate::system::{Probe, TreeSpec};

use super::{share, wp_config};

pub fn spec(cx: &Context) -> TreeSpec {
    TreeSpec {
        path: cx.config.web.docroot.trim_end_matches('/').to_string(),
        owner: "root".into(),
        group: "root".into(),
        dir_mode: 0o755,
        file_mode: 0o644,
        // The uploads are not walked: on the share, every node's files (and no chown over NFS).
        except: vec![wp_config::path(cx), share::uploads(cx)],
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
