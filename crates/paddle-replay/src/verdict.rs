//! The conformance suite's judgement (`check.py`), in Rust, so the vendored vectors are checked
//! by `cargo test` without Python.
//!
//! Per element: `|got − ref| ≤ rtol·|ref| + rtol·max|ref| + tiny` over the finite reference
//! entries of a field (`tiny` is the dtype's smallest normal; `rtol` 1e-5 for float32, 1e-10
//! for float64); non-finite reference entries must match exactly; ±0 are equal.

use serde_json::Value;

use crate::tensor_json::numbers;

/// Compares one field. `None` when it passes, else why not.
pub fn compare_field(reference: &Value, got: &Value, dtype: &str) -> Option<String> {
    let (rtol, tiny) = match dtype {
        "float64" => (1e-10, f64::MIN_POSITIVE),
        _ => (1e-5, f64::from(f32::MIN_POSITIVE)),
    };
    let (expected, actual) = match (numbers(reference), numbers(got)) {
        (Ok(r), Ok(g)) => (r, g),
        (Err(e), _) | (_, Err(e)) => return Some(format!("undecodable: {e}")),
    };
    if expected.len() != actual.len() {
        return Some(format!(
            "{} elements, expected {}",
            actual.len(),
            expected.len()
        ));
    }
    let scale = expected
        .iter()
        .filter(|r| r.is_finite())
        .fold(0.0f64, |m, r| m.max(r.abs()));
    let off = expected.iter().zip(&actual).position(|(&r, &g)| {
        if r.is_nan() {
            !g.is_nan()
        } else if r.is_infinite() {
            g != r
        } else {
            !g.is_finite() || (g - r).abs() > rtol * r.abs() + rtol * scale + tiny
        }
    })?;
    Some(format!(
        "flat index {off}: got {}, expected {}",
        actual[off], expected[off]
    ))
}

/// Judges a results document against a reference file: one line per failed case. An empty
/// list means every field of every step of every case passed.
pub fn judge(reference: &Value, results: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let got_cases = results["cases"].as_array().cloned().unwrap_or_default();
    for case in reference["cases"].as_array().into_iter().flatten() {
        let id = &case["id"];
        let Some(got) = got_cases.iter().find(|c| &c["id"] == id) else {
            failures.push(format!("{id}: not in results"));
            continue;
        };
        if let Some(error) = got.get("error") {
            failures.push(format!("{id}: {error}"));
            continue;
        }
        let dtype = case["dtype"].as_str().unwrap_or("float32");
        let ref_steps = case["steps"].as_array().cloned().unwrap_or_default();
        for (k, step) in ref_steps.iter().enumerate() {
            let got_step = &got["steps"][k];
            for (field, expected) in step["expected"].as_object().into_iter().flatten() {
                let why = match got_step.get(field) {
                    None => Some("missing".to_string()),
                    Some(value) => compare_field(expected, value, dtype),
                };
                if let Some(why) = why {
                    failures.push(format!("{id} step {k} {field}: {why}"));
                }
            }
        }
    }
    failures
}
