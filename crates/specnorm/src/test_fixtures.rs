//! The checkpoints written by the real Paddle and PyTorch (the library's test fixtures) and the
//! references numpy computed for them.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

/// A fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../spectral-norm/tests/fixtures")
        .join(name)
}

/// `expected.json`: per framework, per normalized weight, numpy's σ, `u·(M v)` and eval weight.
pub fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

/// A scratch directory, removed by the caller.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("specnorm-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The (checkpoint file, framework) pairs of the fixtures.
pub const FILES: [(&str, &str); 6] = [
    ("paddle.safetensors", "paddle"),
    ("paddle.pdparams", "paddle"),
    ("torch_hook.pt", "torch_hook"),
    ("torch_hook.safetensors", "torch_hook"),
    ("torch_param.pt", "torch_param"),
    ("torch_param.safetensors", "torch_param"),
];

/// Burn's CPU device has one random generator for the whole process, and the test harness runs
/// tests on several threads. A test that seeds it and expects a repeatable run, and every test
/// that draws from it (layer initialization, `spectral_norm`'s `u` and `v`), hold this turn
/// while they do. So does every test that trains: two trainings at once in one process take
/// autodiff node numbers from one counter, which changes the order gradients are summed in
/// (`runs.rs`), so a training that expects a repeatable result must run alone.
pub fn device_rng_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}
