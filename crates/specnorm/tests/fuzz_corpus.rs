//! Every seed of the fuzz targets' corpus (`fuzz/corpus/<target>/`, written by
//! `fuzz/make_corpus.py`) through the reader `specnorm inspect` and `bake` use: files named
//! `valid-*` must be read, every other one refused with a one-line error naming the file, and
//! none may panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Each fuzz target and the extension its input is read as.
const TARGETS: [(&str, &str); 4] = [
    ("pdparams", "pdparams"),
    ("safetensors", "safetensors"),
    ("pytorch", "pt"),
    ("burnpack", "bpk"),
];

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

/// What is wrong with reading `seed` as a `.extension` file, if anything.
fn judge(seed: &Path, extension: &str, scratch: &Path) -> Option<String> {
    let name = seed.file_name().unwrap().to_string_lossy().into_owned();
    let file = scratch.join(format!("{name}.{extension}"));
    std::fs::copy(seed, &file).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| specnorm::tensors::read(&file)));
    let verdict = match result {
        Err(_) => Some(format!("{name}: panicked")),
        Ok(Ok(_)) if name.starts_with("valid-") => None,
        Ok(Ok(tensors)) => Some(format!("{name}: read {} tensors, must fail", tensors.len())),
        Ok(Err(error)) if name.starts_with("valid-") => Some(format!("{name}: {error:#}")),
        Ok(Err(error)) => {
            let message = format!("{error:#}");
            let named = message.contains(&file.display().to_string());
            (!named || message.contains('\n')).then(|| format!("{name}: bad message {message:?}"))
        }
    };
    std::fs::remove_file(&file).unwrap();
    verdict
}

#[test]
fn every_corpus_seed_is_read_or_refused_as_its_name_says_and_nothing_panics() {
    let scratch = std::env::temp_dir().join(format!("specnorm-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut problems = Vec::new();
    for (target, extension) in TARGETS {
        let seeds = corpus(target);
        let valid = seeds
            .iter()
            .filter(|s| {
                s.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("valid-")
            })
            .count();
        assert!(
            valid >= 2 && seeds.len() >= valid + 15,
            "{target}: {valid} of {} seeds valid",
            seeds.len()
        );
        for seed in &seeds {
            if let Some(problem) = judge(seed, extension, &scratch) {
                problems.push(format!("{target}/{problem}"));
            }
        }
    }
    std::fs::remove_dir_all(&scratch).unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
