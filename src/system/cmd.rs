//! Commands as data: argv with secret arguments marked, optional stdin, a time limit.

use std::fmt;
use std::time::Duration;

use crate::error::Error;
use crate::secrets::{Secret, REDACTED};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Plain(String),
    /// Shown as `<redacted>` everywhere but in the real argv. Avoid: prefer stdin.
    Secret(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Plain(String),
    Secret(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<Arg>,
    pub stdin: Option<Input>,
    pub env: Vec<(String, String)>,
    /// Killed after this long; the run then ends as a timeout (exit 3).
    pub timeout: Duration,
    /// Working directory: a path on the target, resolved under `--root` like every other path.
    pub cwd: Option<String>,
    /// An exit status that means "what this needs is not answering yet": the step fails as a
    /// timeout (exit 3), so the boot unit runs hainit again instead of giving up.
    pub not_ready_exit: Option<i32>,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            stdin: None,
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            cwd: None,
            not_ready_exit: None,
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(Arg::Plain(a.into()));
        self
    }
    pub fn args<I, S>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(items.into_iter().map(|a| Arg::Plain(a.into())));
        self
    }
    pub fn secret_arg(mut self, s: Secret) -> Self {
        self.args.push(Arg::Secret(s));
        self
    }
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(Input::Plain(text.into()));
        self
    }
    pub fn stdin_secret(mut self, s: Secret) -> Self {
        self.stdin = Some(Input::Secret(s));
        self
    }
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    pub fn not_ready_exit(mut self, code: i32) -> Self {
        self.not_ready_exit = Some(code);
        self
    }
    /// The error for `out`, a failed run of this command: a timeout (exit 3) when it exited
    /// with its not-ready status, else a step failure.
    pub fn failure(&self, out: &Output, msg: String) -> Error {
        if out.code.is_some() && out.code == self.not_ready_exit {
            Error::timeout(msg)
        } else {
            Error::step(msg)
        }
    }

    /// argv with secrets replaced by the placeholder: what plans and logs show.
    pub fn argv_redacted(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().map(|a| match a {
                Arg::Plain(s) => s.clone(),
                Arg::Secret(_) => REDACTED.to_string(),
            }))
            .collect()
    }

    /// The real argument vector, only for handing to the OS.
    pub fn args_exposed(&self) -> Vec<&str> {
        self.args
            .iter()
            .map(|a| match a {
                Arg::Plain(s) => s.as_str(),
                Arg::Secret(s) => s.expose(),
            })
            .collect()
    }

    pub fn stdin_bytes(&self) -> Option<&[u8]> {
        self.stdin.as_ref().map(|i| match i {
            Input::Plain(s) => s.as_bytes(),
            Input::Secret(s) => s.expose().as_bytes(),
        })
    }
}

impl Cmd {
    /// A script of lines on stdin (a pcs batch), which people are shown whole.
    pub fn here_document(&self) -> Option<&str> {
        match &self.stdin {
            Some(Input::Plain(s)) if s.lines().count() > 1 && s.ends_with('\n') => Some(s),
            _ => None,
        }
    }

    /// The command line without a here-document's lines.
    pub fn head(&self) -> String {
        let words: Vec<String> = self.argv_redacted().into_iter().map(|w| quote(&w)).collect();
        let mut out = String::new();
        if let Some(dir) = &self.cwd {
            out.push_str(&format!("(in {}) ", quote(dir)));
        }
        out.push_str(&words.join(" "));
        match &self.stdin {
            Some(Input::Secret(_)) => out.push_str(&format!(" <<< {REDACTED}")),
            Some(Input::Plain(_)) if self.here_document().is_some() => out.push_str(" <<'EOF'"),
            Some(Input::Plain(s)) => out.push_str(&format!(" <<< ({} bytes)", s.len())),
            None => {}
        }
        out
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.head())?;
        match self.here_document() {
            Some(body) => write!(f, "\n{body}EOF"),
            None => Ok(()),
        }
    }
}

/// Shell-like quoting for humans (never executed; `<redacted>` stays bare).
fn quote(word: &str) -> String {
    quote_with(word, "-_./=:,@%+<>")
}

fn quote_with(word: &str, safe_marks: &str) -> String {
    let safe = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || safe_marks.contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit code; `None` when killed by a signal (a time limit is an error, not an `Output`).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: impl Into<String>) -> Self {
        Output { code: Some(0), stdout: stdout.into(), stderr: String::new() }
    }
    pub fn fail(code: i32, stderr: impl Into<String>) -> Self {
        Output { code: Some(code), stdout: String::new(), stderr: stderr.into() }
    }
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// The last KiB of stderr (or stdout when stderr is empty), for error messages.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        let text = text.trim();
        let start = text.len().saturating_sub(1024);
        let start = (start..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text[start..].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_display_and_argv() {
        let c = Cmd::new("pcs")
            .args(["host", "auth", "db a"])
            .secret_arg(Secret::new("pw-123"))
            .stdin_secret(Secret::new("pw-456"));
        assert_eq!(c.argv_redacted(), ["pcs", "host", "auth", "db a", "<redacted>"]);
        assert_eq!(c.to_string(), "pcs host auth 'db a' <redacted> <<< <redacted>");
        assert_eq!(c.args_exposed()[3], "pw-123");
        assert_eq!(c.stdin_bytes().unwrap(), b"pw-456");
    }

    #[test]
    fn a_script_on_stdin_is_shown_as_a_here_document() {
        let c = Cmd::new("python3").arg("batch.py").stdin("pcs a\npcs b\n");
        assert_eq!(c.to_string(), "python3 batch.py <<'EOF'\npcs a\npcs b\nEOF");
        assert_eq!(Cmd::new("mysql").stdin("SELECT 1;\n").to_string(), "mysql <<< (10 bytes)");
    }

    #[test]
    fn tail_is_bounded() {
        let o = Output::fail(1, "x".repeat(5000));
        assert_eq!(o.tail().len(), 1024);
    }
}
