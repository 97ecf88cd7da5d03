//! Files as data: what a step wants on disk, and what is there.

use sha2::{Digest, Sha256};

use crate::secrets::hex;

#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    Plain(Vec<u8>),
    /// Contains derived secrets: never logged or diffed, only its sha256 is shown.
    Secret(Vec<u8>),
}

impl Content {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Content::Plain(b) | Content::Secret(b) => b,
        }
    }
    pub fn is_secret(&self) -> bool {
        matches!(self, Content::Secret(_))
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Plain(b) => write!(f, "Plain({} bytes)", b.len()),
            Content::Secret(b) => write!(f, "Secret({} bytes)", b.len()),
        }
    }
}

/// A file a step wants: exact content, mode, owner and group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: String,
    pub content: Content,
    pub mode: u32,
    pub owner: String,
    pub group: String,
}

impl FileSpec {
    /// A root-owned file.
    pub fn new(path: impl Into<String>, content: impl Into<Vec<u8>>, mode: u32) -> Self {
        FileSpec {
            path: path.into(),
            content: Content::Plain(content.into()),
            mode,
            owner: "root".into(),
            group: "root".into(),
        }
    }
    pub fn secret(mut self) -> Self {
        if let Content::Plain(b) = self.content {
            self.content = Content::Secret(b);
        }
        self
    }
    pub fn owned_by(mut self, owner: &str, group: &str) -> Self {
        self.owner = owner.into();
        self.group = group.into();
        self
    }
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(self.content.bytes()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    BlockDevice,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub kind: FileKind,
    /// Permission bits only (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub len: u64,
}

/// uid of `name` in the text of an `/etc/passwd`; numeric names are taken as ids.
pub fn lookup_user(passwd: &str, name: &str) -> Option<u32> {
    lookup(passwd, name, 2)
}

/// gid of `name` in the text of an `/etc/group`.
pub fn lookup_group(group: &str, name: &str) -> Option<u32> {
    lookup(group, name, 2)
}

fn lookup(db: &str, name: &str, id_field: usize) -> Option<u32> {
    if let Ok(id) = name.parse() {
        return Some(id);
    }
    db.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name)).then(|| fields.get(id_field)?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_users_and_groups() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";
        assert_eq!(lookup_user(passwd, "www-data"), Some(33));
        assert_eq!(lookup_user(passwd, "root"), Some(0));
        assert_eq!(lookup_user(passwd, "nginx"), None);
        assert_eq!(lookup_user(passwd, "1000"), Some(1000));
        assert_eq!(lookup_group("mysql:x:107:\n", "mysql"), Some(107));
    }

    #[test]
    fn sha256_of_content() {
        let f = FileSpec::new("/x", "abc", 0o644);
        assert_eq!(f.sha256(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
