//! Actions as data, and the report `plan` prints (text for people, JSON for machines).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::secrets::REDACTED;
use crate::system::{Cmd, DownloadSpec, FileSpec, Input, TreeSpec, UnpackSpec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a whole file atomically.
    Write(FileSpec),
    Dir {
        path: String,
        mode: u32,
        owner: String,
        group: String,
    },
    /// Run a command; a non-zero exit fails the step.
    Run {
        cmd: Cmd,
        why: String,
    },
    /// Run a command and keep its standard output as a file (mode 0600, written atomically) when
    /// it exits with one of `ok_exits`; any other status fails the step and writes nothing.
    Capture {
        cmd: Cmd,
        path: String,
        ok_exits: Vec<i32>,
        why: String,
    },
    /// Poll the step's check until it no longer asks to wait, up to `timeout` (then exit 3).
    Wait {
        what: String,
        timeout: Duration,
    },
    /// Replace a directory tree with the verified content of an archive.
    Unpack(UnpackSpec),
    /// Fetch a file whose sha256 is pinned.
    Download(DownloadSpec),
    /// Owner, group and modes across a directory tree.
    Tree(TreeSpec),
}

impl Action {
    pub fn run(cmd: Cmd, why: impl Into<String>) -> Self {
        Action::Run { cmd, why: why.into() }
    }
    /// [`Action::Capture`] of a command that succeeds with exit 0.
    pub fn capture(cmd: Cmd, path: impl Into<String>, why: impl Into<String>) -> Self {
        Action::Capture { cmd, path: path.into(), ok_exits: vec![0], why: why.into() }
    }
    pub fn wait(what: impl Into<String>, timeout: Duration) -> Self {
        Action::Wait { what: what.into(), timeout }
    }
    pub fn dir(path: impl Into<String>, mode: u32, owner: &str, group: &str) -> Self {
        Action::Dir { path: path.into(), mode, owner: owner.into(), group: group.into() }
    }

    pub fn is_wait(&self) -> bool {
        matches!(self, Action::Wait { .. })
    }

    /// The `plan --json` form of one action.
    pub fn to_json(&self) -> Value {
        match self {
            Action::Write(f) => json!({
                "type": "file", "path": f.path, "mode": format!("{:04o}", f.mode),
                "owner": f.owner, "group": f.group, "sha256": content_sha256(f),
            }),
            Action::Dir { path, mode, owner, group } => json!({
                "type": "dir", "path": path, "mode": format!("{mode:04o}"), "owner": owner, "group": group,
            }),
            Action::Run { cmd, why } => {
                let mut v = json!({ "type": "command", "argv": cmd.argv_redacted(), "why": why });
                if let Some(dir) = &cmd.cwd {
                    v["cwd"] = json!(dir);
                }
                if let Some(input) = &cmd.stdin {
                    v["stdin"] = match input {
                        Input::Secret(_) => json!(REDACTED),
                        Input::Plain(s) => json!(s),
                    };
                }
                v
            }
            Action::Capture { cmd, path, ok_exits, why } => json!({
                "type": "capture", "argv": cmd.argv_redacted(), "path": path, "ok_exits": ok_exits, "why": why,
            }),
            Action::Wait { what, timeout } => {
                json!({ "type": "wait", "what": what, "timeout_secs": timeout.as_secs() })
            }
            Action::Unpack(u) => json!({
                "type": "unpack", "archive": u.archive, "sha256": u.sha256, "top": u.top, "dest": u.dest,
                "keep": u.keep,
            }),
            Action::Download(d) => json!({ "type": "download", "url": d.url, "path": d.path, "sha256": d.sha256 }),
            Action::Tree(t) => json!({
                "type": "tree", "path": t.path, "owner": t.owner, "group": t.group,
                "dir_mode": format!("{:04o}", t.dir_mode), "file_mode": format!("{:04o}", t.file_mode),
                "except": t.except,
            }),
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Action::Write(f) => {
                let sha = content_sha256(f);
                let secret = if f.content.is_secret() { " (contains secrets)" } else { "" };
                format!("file  {} {:04o} {}:{} sha256:{}{secret}", f.path, f.mode, f.owner, f.group, short(&sha))
            }
            Action::Dir { path, mode, owner, group } => format!("dir   {path} {mode:04o} {owner}:{group}"),
            Action::Run { cmd, why } => {
                let mut line = format!("run   {}    # {why}", cmd.head());
                // A here-document's lines follow, indented under the command.
                if let Some(body) = cmd.here_document() {
                    for l in body.lines().chain(["EOF"]) {
                        line.push_str("\n          ");
                        line.push_str(l);
                    }
                }
                line
            }
            Action::Capture { cmd, path, ok_exits, why } => {
                let exits = if *ok_exits == [0] { String::new() } else { format!(" (exit {})", join_codes(ok_exits)) };
                format!("run   {} > {path}{exits}    # {why}", cmd.head())
            }
            Action::Wait { what, timeout } => format!("wait  {what} (up to {} s)", timeout.as_secs()),
            Action::Unpack(u) => {
                let keep = if u.keep.is_empty() { String::new() } else { format!(", keeping {}", u.keep.join(", ")) };
                format!("unpack {} sha256:{} {}/ -> {}{keep}", u.archive, short(&u.sha256), u.top, u.dest)
            }
            Action::Download(d) => format!("download {} -> {} sha256:{}", d.url, d.path, short(&d.sha256)),
            Action::Tree(t) => {
                let except =
                    if t.except.is_empty() { String::new() } else { format!(" except {}", t.except.join(", ")) };
                format!(
                    "tree  {} {}:{} dirs {:04o} files {:04o}{except}",
                    t.path, t.owner, t.group, t.dir_mode, t.file_mode
                )
            }
        }
    }
}

/// The sha256 of a file's content, or `<redacted>` when the content holds secrets: a hash of a
/// derived password or key is an oracle to test guesses of the shared secret against.
fn content_sha256(f: &FileSpec) -> String {
    if f.content.is_secret() {
        REDACTED.to_string()
    } else {
        f.sha256()
    }
}

/// `1` or `0 or 1`: the exit statuses an action accepts, for messages.
pub fn join_codes(codes: &[i32]) -> String {
    codes.iter().map(i32::to_string).collect::<Vec<_>>().join(" or ")
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Ok,
    Change,
}

#[derive(Debug, Clone)]
pub struct StepReport {
    pub name: &'static str,
    pub actions: Vec<Action>,
}

impl StepReport {
    pub fn state(&self) -> StepState {
        if self.actions.is_empty() {
            StepState::Ok
        } else {
            StepState::Change
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<StepReport>,
}

impl Plan {
    pub fn is_converged(&self) -> bool {
        self.steps.iter().all(|s| s.actions.is_empty())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "steps": self.steps.iter().map(|s| json!({
                "name": s.name,
                "state": s.state(),
                "actions": s.actions.iter().map(Action::to_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>()
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            let state = match s.state() {
                StepState::Ok => "ok",
                StepState::Change => "change",
            };
            let _ = writeln!(out, "{:<40} {state}", s.name);
            for a in &s.actions {
                let _ = writeln!(out, "    {}", a.describe());
            }
        }
        let changes = self.steps.iter().filter(|s| !s.actions.is_empty()).count();
        let _ = writeln!(out, "{} steps, {changes} to change", self.steps.len());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn json_shape_of_each_action() {
        let plan = Plan {
            steps: vec![
                StepReport { name: "a.ok", actions: vec![] },
                StepReport {
                    name: "a.change",
                    actions: vec![
                        Action::Write(FileSpec::new("/etc/x", "x", 0o640).owned_by("root", "www-data")),
                        Action::run(Cmd::new("chpasswd").stdin_secret(Secret::new("hacluster:pw")), "set password"),
                        Action::wait("peer", Duration::from_secs(5)),
                    ],
                },
            ],
        };
        let v = plan.to_json();
        assert_eq!(v["steps"][0]["state"], "ok");
        assert_eq!(v["steps"][1]["state"], "change");
        let a = &v["steps"][1]["actions"];
        assert_eq!(a[0]["mode"], "0640");
        assert_eq!(a[0]["owner"], "root");
        assert_eq!(a[0]["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(a[1]["argv"], json!(["chpasswd"]));
        assert_eq!(a[1]["stdin"], "<redacted>");
        assert_eq!(a[2]["timeout_secs"], 5);
        assert!(!v.to_string().contains("hacluster:pw"));
        assert!(plan.to_text().contains("2 steps, 1 to change"));
    }

    #[test]
    fn files_with_secrets_show_no_hash_of_their_content() {
        let secret = FileSpec::new("/etc/corosync/authkey", "derived-key", 0o400).secret();
        let sha = secret.sha256();
        let action = Action::Write(secret);
        assert_eq!(action.to_json()["sha256"], "<redacted>");
        assert!(!action.to_json().to_string().contains(&sha));
        assert_eq!(
            action.describe(),
            "file  /etc/corosync/authkey 0400 root:root sha256:<redacted> (contains secrets)"
        );
        let plain = Action::Write(FileSpec::new("/etc/x", "x", 0o644));
        assert_eq!(plain.to_json()["sha256"].as_str().unwrap().len(), 64);
    }
}
