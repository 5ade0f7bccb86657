//! The demos train each run in a worker process of their own (`runs.rs`): a seed must give the
//! same result whatever number of workers runs at once, and a failing worker must surface as
//! the command's error.

use std::process::{Command, Output};

fn specnorm(args: &[&str], workers: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_specnorm"))
        .args(args)
        .env("SPECNORM_WORKERS", workers)
        .output()
        .unwrap()
}

#[test]
fn a_seed_reproduces_its_runs_whatever_runs_beside_them() {
    let args = ["pacgan", "--seeds", "2", "--steps", "25", "--batch", "32"];
    let side_by_side = specnorm(&args, "4");
    let one_at_a_time = specnorm(&args, "1");
    assert!(side_by_side.status.success(), "{side_by_side:?}");
    let table = String::from_utf8(side_by_side.stdout).unwrap();
    assert_eq!(table, String::from_utf8(one_at_a_time.stdout).unwrap());
    assert_eq!(table.matches("ours, with SN").count(), 2, "{table}");
}

#[test]
fn a_failing_worker_is_the_commands_error() {
    // Workers write their results under the temporary directory: one that does not exist makes
    // every worker fail, after it trained.
    let failed = Command::new(env!("CARGO_BIN_EXE_specnorm"))
        .args(["pacgan", "--seeds", "1", "--steps", "2"])
        .env("TMPDIR", "/nonexistent/specnorm-test")
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = String::from_utf8(failed.stderr).unwrap();
    assert!(stderr.contains("job 0's worker failed"), "{stderr}");
    assert!(
        stderr.contains("writing"),
        "the worker's own error: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn a_worker_checks_its_job_number() {
    let refused = Command::new(env!("CARGO_BIN_EXE_specnorm"))
        .args(["pacgan", "--seeds", "1", "--steps", "2"])
        .env("SPECNORM_JOB", "9")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.contains("SPECNORM_JOB=9, but this command has 4 jobs"),
        "{stderr}"
    );
}
