//! Shared by every target: the input as a file with the target's extension, read by
//! `specnorm::tensors::read`, the function `specnorm inspect` and `bake` call, and then put
//! through what they compute from it: the axis that u and v belong to, σ of every weight, σ
//! from the stored vectors, and the baked weights. (PyTorch's reader only reads files, so
//! every target goes through a file alike.) Any result is fine; a panic, a hang or an
//! out-of-memory is the bug.

use std::path::PathBuf;

use specnorm::weights::{bake, rows};

/// Writes `data` to a per-process scratch file ending in `.extension`, reads it and analyses
/// what it holds.
pub fn read_as(extension: &str, data: &[u8]) {
    let path: PathBuf = std::env::temp_dir().join(format!(
        "specnorm-fuzz-{}.{extension}",
        std::process::id()
    ));
    std::fs::write(&path, data).expect("the scratch directory is writable");
    let Ok(tensors) = specnorm::tensors::read(&path) else {
        return;
    };
    let _ = rows(&tensors, "fuzz input");
    let _ = bake(tensors, "fuzz input", &Default::default());
}
