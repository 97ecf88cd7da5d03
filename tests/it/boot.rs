//! images/systemd/hainit-boot: exit 3 is retried with backoff, other failures are not.

use std::path::Path;
use std::process::Command;

fn run_boot(script_body: &str) -> (Option<i32>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let fake = dir.path().join("hainit");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n{script_body}\n",
            c = count.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let boot = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/systemd/hainit-boot");
    let out = Command::new("sh")
        .arg(boot)
        .env("HAINIT", &fake)
        .env("HAINIT_BOOT_DELAY", "0")
        .env("HAINIT_BOOT_ATTEMPTS", "4")
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(count).unwrap().trim().parse().unwrap();
    (out.status.code(), calls)
}

#[test]
fn timeouts_are_retried_until_success() {
    assert_eq!(run_boot("[ $n -ge 3 ] && exit 0; exit 3"), (Some(0), 3));
}

#[test]
fn timeouts_give_up_after_the_attempt_limit() {
    assert_eq!(run_boot("exit 3"), (Some(3), 4));
}

#[test]
fn step_failures_and_bad_input_are_not_retried() {
    assert_eq!(run_boot("exit 1"), (Some(1), 1));
    assert_eq!(run_boot("exit 2"), (Some(2), 1));
}
