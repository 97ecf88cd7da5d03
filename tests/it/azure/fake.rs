//! Running the Azure scripts against the fake `az`, and reading what they asked of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One call of the fake `az`: its argv and the `@FILE` arguments' mode and content at call time.
#[derive(Debug, Clone)]
pub struct Call {
    pub argv: Vec<String>,
    pub files: BTreeMap<String, (String, String)>,
}

impl Call {
    /// The command words before the first option (`network lb probe create`).
    pub fn command(&self) -> String {
        self.argv.iter().take_while(|a| !a.starts_with('-')).cloned().collect::<Vec<_>>().join(" ")
    }

    pub fn is(&self, command: &str) -> bool {
        self.command() == command
    }

    /// Every value of an option (values run until the next option).
    pub fn values(&self, flag: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut on = false;
        for a in &self.argv {
            if a.starts_with('-') && a.len() > 1 {
                on = a == flag;
            } else if on {
                out.push(a.clone());
            }
        }
        out
    }

    pub fn value(&self, flag: &str) -> Option<String> {
        self.values(flag).into_iter().next()
    }

    pub fn has(&self, flag: &str) -> bool {
        self.argv.iter().any(|a| a == flag)
    }

    /// Changes the subscription (everything but show/list queries and `account show`).
    pub fn mutates(&self) -> bool {
        let c = self.command();
        !(c.ends_with(" show") || c.ends_with(" list") || c == "account show")
    }
}

/// A throw-away HOME, a PATH whose `az` and `azcopy` are the fakes, the fake's state directory,
/// and a small image (`vhd()`) that the deploy script uploads by default.
pub struct FakeAz {
    pub dir: tempfile::TempDir,
}

impl FakeAz {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(repo("tests/fixtures/azure/fake-az"), bin.join("az")).unwrap();
        // deploy-azure.sh derives the web tier's secrets with `hainit secrets` from PATH.
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hainit"), bin.join("hainit")).unwrap();
        std::os::unix::fs::symlink(repo("tests/fixtures/azure/fake-azcopy"), bin.join("azcopy")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let az = FakeAz { dir };
        az.make_vhd(&az.vhd(), 1);
        az
    }

    /// The image the deploy script uploads unless told otherwise (HAINIT_IMAGE_VHD).
    pub fn vhd(&self) -> PathBuf {
        self.dir.path().join("images/hainit-debian12.vhd")
    }

    /// A fixed VHD of 4 MiB whose first byte is `seed` (one seed, one sha256: qemu-img stamps a
    /// time and a UUID into the footer, so each seed's image is made once and copied), with its .sha256.
    pub fn make_vhd(&self, path: &Path, seed: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let made = made_vhd(seed);
        std::fs::copy(&made, path).unwrap();
        let sum = std::fs::read_to_string(made.with_extension("vhd.sha256")).unwrap();
        std::fs::write(path.with_extension("vhd.sha256"), sum).unwrap();
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Run `bash scripts/<script> ARGS` (`python3` for a .py) with the fake first on PATH; `env`
    /// adds variables.
    pub fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap());
        let mut cmd = Command::new(if script.ends_with(".py") { "python3" } else { "bash" });
        cmd.arg(repo(script)).args(args).env("PATH", path).env("FAKE_AZ_DIR", self.dir.path());
        cmd.env("HOME", self.home()).env_remove("XDG_CONFIG_HOME").env("TMPDIR", self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("HAINIT_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HAINIT_IMAGE_VHD", self.vhd());
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.log().into_iter().filter(|e| e["kind"] == "az").map(|e| to_call(&e)).collect()
    }

    /// Every `azcopy` call so far (argv after `azcopy`).
    pub fn azcopies(&self) -> Vec<Vec<String>> {
        self.log()
            .into_iter()
            .filter(|e| e["kind"] == "azcopy")
            .map(|e| e["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect())
            .collect()
    }

    /// The raw log: the fake az's calls and (for the drill) the fake WordPress' requests.
    pub fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log.jsonl")
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join("state.json")).unwrap()).unwrap()
    }

    pub fn set_state(&self, state: &Value) {
        std::fs::write(self.dir.path().join("state.json"), serde_json::to_string(state).unwrap()).unwrap();
    }
}

/// The seed's VHD, made once per test process.
fn made_vhd(seed: u8) -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let _guard = LOCK.lock().unwrap();
    let vhd = dir.path().join(format!("seed{seed}.vhd"));
    if !vhd.exists() {
        let raw = dir.path().join("seed.raw");
        let mut data = vec![0u8; 4 << 20];
        data[0] = seed;
        std::fs::write(&raw, &data).unwrap();
        let out = Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on"])
            .arg(&raw)
            .arg(&vhd)
            .output()
            .unwrap();
        assert!(out.status.success(), "qemu-img: {}", text(&out.stderr));
        let out = Command::new("sha256sum").arg(&vhd).output().unwrap();
        std::fs::write(vhd.with_extension("vhd.sha256"), out.stdout).unwrap();
    }
    vhd
}

fn to_call(e: &Value) -> Call {
    let argv = e["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let mut files = BTreeMap::new();
    if let Some(map) = e["files"].as_object() {
        for (path, f) in map {
            files.insert(path.clone(), (f["mode"].as_str().unwrap().into(), f["content"].as_str().unwrap().into()));
        }
    }
    Call { argv, files }
}

/// Split one printed command line the way a POSIX shell would (the scripts quote with '…').
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The az commands a dry run printed, as calls (`az` stripped); the upload's `azcopy` line is the
/// only other command it may print (printed_azcopy).
pub fn printed_calls(stdout: &str) -> Vec<Call> {
    printed(stdout)
        .into_iter()
        .filter(|argv| argv[0] != "azcopy")
        .map(|mut argv| {
            assert_eq!(argv[0], "az", "not an az command: {argv:?}");
            argv.remove(0);
            Call { argv, files: BTreeMap::new() }
        })
        .collect()
}

/// The `azcopy` commands a dry run printed (argv after `azcopy`).
pub fn printed_azcopy(stdout: &str) -> Vec<Vec<String>> {
    printed(stdout).into_iter().filter(|argv| argv[0] == "azcopy").map(|argv| argv[1..].to_vec()).collect()
}

fn printed(stdout: &str) -> Vec<Vec<String>> {
    stdout.lines().filter(|l| !l.trim().is_empty()).map(shell_words).collect()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn shell_words_undo_the_scripts_quoting() {
    assert_eq!(shell_words(r#"az a 'b c' 'it'\''s' --x '*'"#), ["az", "a", "b c", "it's", "--x", "*"]);
}
