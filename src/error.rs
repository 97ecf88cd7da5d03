//! One error type whose kind decides the exit code (design: 0 ok, 1 step, 2 input, 3 timeout).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad flags, config, tags or IMDS document: exit 2, nothing was touched.
    Input,
    /// A step failed while converging: exit 1.
    Step,
    /// A peer or service did not answer in time: exit 3, a re-run resumes.
    Timeout,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Step => 1,
            ErrorKind::Input => 2,
            ErrorKind::Timeout => 3,
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    msg: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn input(msg: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Input, msg: msg.into() }
    }
    pub fn step(msg: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Step, msg: msg.into() }
    }
    pub fn timeout(msg: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Timeout, msg: msg.into() }
    }
    pub fn message(&self) -> &str {
        &self.msg
    }
    /// Prefix the message with what was being done, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error { kind: self.kind, msg: format!("{what}: {}", self.msg) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// `.context("reading /etc/x")` on any result whose error is an [`Error`].
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(what))
    }
}

/// I/O failures on the machine are step failures that name the path.
pub fn io_error(what: impl fmt::Display, e: std::io::Error) -> Error {
    Error::step(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_contract_exit_codes() {
        assert_eq!(Error::step("x").kind.exit_code(), 1);
        assert_eq!(Error::input("x").kind.exit_code(), 2);
        assert_eq!(Error::timeout("x").kind.exit_code(), 3);
    }

    #[test]
    fn context_prefixes_and_keeps_kind() {
        let e: Result<()> = Err(Error::timeout("no answer"));
        let e = e.context("waiting for db-b").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert_eq!(e.to_string(), "waiting for db-b: no answer");
    }
}
