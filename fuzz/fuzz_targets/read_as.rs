//! Shared by every target: the input as a file with the target's extension, read by
//! `specnorm::tensors::read`, the function `specnorm inspect` and `bake` call. (PyTorch's
//! reader only reads files, so every target goes through a file alike.) Any result is fine;
//! a panic, a hang or an out-of-memory is the bug.

use std::path::PathBuf;

/// Writes `data` to a per-process scratch file ending in `.extension` and reads it.
pub fn read_as(extension: &str, data: &[u8]) {
    let path: PathBuf = std::env::temp_dir().join(format!(
        "specnorm-fuzz-{}.{extension}",
        std::process::id()
    ));
    std::fs::write(&path, data).expect("the scratch directory is writable");
    let _ = specnorm::tensors::read(&path);
}
