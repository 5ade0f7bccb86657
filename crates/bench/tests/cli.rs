//! `sn-bench` as a user runs it, without the peers: each (thread count, shape) is measured in
//! a process of its own (`--worker`), and the parent gathers their rows in order.

use std::process::Command;

use serde_json::Value;

fn sn_bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sn-bench"))
}

#[test]
fn every_thread_count_and_shape_comes_back_from_its_own_process() {
    let out = std::env::temp_dir().join(format!("sn-bench-cli-{}", std::process::id()));
    let run = sn_bench()
        .args(["--no-peers", "--alone-only", "--threads", "1,2"])
        .args(["--shapes", "lin256,conv64x3x3x3", "--iters", "1,2"])
        .args(["--budget", "0.01", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("worst SN-alone ratio vs target:"),
        "{stdout}"
    );

    let rows: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("ours.json")).unwrap()).unwrap();
    let keys: Vec<(u64, &str, u64)> = rows
        .iter()
        .map(|row| {
            (
                row["threads"].as_u64().unwrap(),
                row["shape"].as_str().unwrap(),
                row["n"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for threads in [1, 2] {
        for shape in ["lin256", "conv64x3x3x3"] {
            for n in [1, 2] {
                expected.push((threads, shape, n));
            }
        }
    }
    assert_eq!(keys, expected);
    for row in &rows {
        assert!(
            row["sn_train"]["median_us"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        assert!(row["floor_us"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            row["step"].is_null(),
            "--alone-only measures no step: {row}"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_worker_refuses_more_than_one_thread_count() {
    let run = sn_bench()
        .args(["--worker", "--threads", "1,2", "--shapes", "lin256"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("one thread count"), "{stderr}");
}
