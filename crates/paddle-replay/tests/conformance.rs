//! The vendored Paddle 3.3.1 vectors, replayed through the public API and judged with the
//! suite's tolerances.

use std::path::PathBuf;

use paddle_replay::{Replay, hook, op, replay_all, verdict::judge};
use serde_json::Value;

fn vectors(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/paddle")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

fn assert_conforms(file: &str, replay: Replay) {
    let reference = vectors(file);
    let (results, could_not_run) = replay_all(&reference, replay).expect("replayable file");
    assert!(could_not_run.is_empty(), "{could_not_run:#?}");
    let failures = judge(&reference, &results);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(reference["cases"].as_array().is_some_and(|c| c.len() > 10));
}

#[test]
fn hook_cases_match_paddle() {
    assert_conforms("cases.json", hook::replay_case);
}

#[test]
fn op_cases_match_paddle_with_the_true_gradient() {
    assert_conforms("op_cases.json", op::replay_case);
}

#[test]
fn the_judge_rejects_a_perturbed_result() {
    let reference = vectors("cases.json");
    let (mut results, _) = replay_all(&reference, hook::replay_case).unwrap();
    let sigma = &mut results["cases"][0]["steps"][0]["sigma"];
    *sigma = Value::from(sigma.as_f64().unwrap() * (1.0 + 1e-6));
    let failures = judge(&reference, &results);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("sigma"));
}
