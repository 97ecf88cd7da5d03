//! images/systemd/hainit-boot, run for real with a fake hainit: exit 3 is retried with backoff up
//! to the attempt limit; exit 1, 2 and crashes are not, and the last line says what failed.

use std::path::Path;
use std::process::Command;

struct Boot {
    code: Option<i32>,
    calls: usize,
    stderr: String,
}

/// Run hainit-boot with a fake hainit whose body is `script_body` (`$n` is its call number).
fn run_boot(script_body: &str, delay: &str) -> Boot {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let fake = dir.path().join("hainit");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n[ \"$1\" = apply ] || exit 64\nn=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n{script_body}\n",
            c = count.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let boot = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/systemd/hainit-boot");
    let out = Command::new("sh")
        .arg(boot)
        .env("HAINIT", &fake)
        .env("HAINIT_BOOT_DELAY", delay)
        .env("HAINIT_BOOT_ATTEMPTS", "4")
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(count).unwrap().trim().parse().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "hainit-boot left its temporary files behind: {left:?}");
    Boot { code: out.status.code(), calls, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[test]
fn timeouts_are_retried_until_success() {
    let b = run_boot("echo \"run $n\" >&2; [ $n -ge 3 ] && exit 0; exit 3", "0");
    assert_eq!((b.code, b.calls), (Some(0), 3));
    assert!(
        b.stderr.contains("run 1\n") && b.stderr.contains("run 3\n"),
        "hainit's messages pass through: {}",
        b.stderr
    );
    assert!(b.stderr.contains("attempt 2 of 4 timed out (exit 3)"), "{}", b.stderr);
    assert_eq!(last_line(&b.stderr), "hainit-boot: converged on attempt 3");
}

#[test]
fn timeouts_back_off_and_give_up_after_the_attempt_limit() {
    let b = run_boot("echo \"ERROR timed out after 900 s waiting for pcsd on db-b (10.0.1.5:2224)\" >&2; exit 3", "1");
    assert_eq!((b.code, b.calls), (Some(3), 4));
    for wait in ["retrying in 1s", "retrying in 2s", "retrying in 4s"] {
        assert!(b.stderr.contains(wait), "{wait}: {}", b.stderr);
    }
    let last = last_line(&b.stderr);
    assert!(last.starts_with("hainit-boot: FAILED: still timing out after 4 attempts"), "{last}");
    assert!(
        last.ends_with("Last message: ERROR timed out after 900 s waiting for pcsd on db-b (10.0.1.5:2224)"),
        "{last}"
    );
}

/// Exit 1 is a bug or a state a human must see: one run, and the journal's last line says so
/// with what failed (hainit's own last message), not "see above".
#[test]
fn a_step_failure_is_not_retried_and_the_last_line_says_what_failed() {
    let msg = "ERROR step db.cluster.start: `corosync-cmapctl -g totem.cluster_name` failed with CS_ERR_LIBRARY";
    let b = run_boot(&format!("echo 'INFO step ok' >&2; echo '{msg}' >&2; echo >&2; exit 1"), "0");
    assert_eq!((b.code, b.calls), (Some(1), 1));
    let last = last_line(&b.stderr);
    assert!(last.starts_with("hainit-boot: FAILED: a step failed (exit 1), not retried"), "{last}");
    assert!(last.ends_with(&format!("What failed: {msg}")), "{last}");
}

#[test]
fn bad_input_and_crashes_are_not_retried() {
    let b = run_boot("echo 'ERROR tag hainit-role: \"cache\" is not db or web' >&2; exit 2", "0");
    assert_eq!((b.code, b.calls), (Some(2), 1));
    assert!(last_line(&b.stderr).contains("bad input (exit 2") && b.stderr.contains("\"cache\""), "{}", b.stderr);
    let b = run_boot("kill -9 $$", "0");
    assert_eq!((b.code, b.calls), (Some(137), 1));
    assert!(last_line(&b.stderr).contains("status 137 (a crash or a kill)"), "{}", b.stderr);
    let b = run_boot("exit 101", "0");
    assert_eq!((b.code, b.calls), (Some(101), 1));
    assert!(last_line(&b.stderr).ends_with("Last message: (hainit printed nothing)"), "{}", b.stderr);
}
