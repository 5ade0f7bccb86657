//! Every seed of the fuzz targets' corpus (`fuzz/corpus/<target>/`, written by
//! `fuzz/make_corpus.py`) through the reader `specnorm inspect` and `bake` use: files named
//! `valid-*` must be read, every other one refused with a one-line error naming the file, none
//! may panic, and none may take more memory than a fixed multiple of its size: a counting
//! allocator measures the peak of every read (an allocation failure aborts the process, which
//! no `catch_unwind` could report, so the budget is checked before it would).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use specnorm::tensors::NamedTensor;
use specnorm::weights::{bake, rows};

/// The system allocator, counting the bytes live now and the most live since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments, so `System`'s
// guarantees hold; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most memory reading a seed may take beyond what was live before: a multiple of the
/// file's size (the pdparams reader charges its values and vectors 16 bytes per byte of file,
/// plus 1 MiB) plus a constant for the readers' fixed costs. The million-item pickles peak at
/// about 7 bytes per byte, a file of 100,000 nested marks at 16.
fn memory_limit(file_len: usize) -> usize {
    16 * file_len + (8 << 20)
}

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

/// What `inspect` and `bake` compute from a file that was read: the axis of every normalized
/// weight, σ of every weight, σ from the stored vectors and the baked weights. Errors are
/// fine here (the judge below checks the reads); a panic is not.
fn analyse(tensors: &BTreeMap<String, NamedTensor>) {
    let _ = rows(tensors, "seed");
    let _ = bake(tensors.clone(), "seed", &Default::default());
}

/// What is wrong with reading `seed` as a `.extension` file, if anything.
fn judge(seed: &Path, extension: &str, scratch: &Path) -> Option<String> {
    let name = seed.file_name().unwrap().to_string_lossy().into_owned();
    let file = scratch.join(format!("{name}.{extension}"));
    std::fs::copy(seed, &file).unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let tensors = specnorm::tensors::read(&file)?;
        analyse(&tensors);
        Ok::<_, anyhow::Error>(tensors)
    }));
    let used = PEAK.load(Ordering::Relaxed) - before;
    let limit = memory_limit(std::fs::metadata(seed).unwrap().len() as usize);
    if used > limit {
        std::fs::remove_file(&file).unwrap();
        return Some(format!("{name}: took {used} bytes, more than {limit}"));
    }
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
