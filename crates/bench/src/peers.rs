//! Runs `peers.py` (beside this crate: PyTorch's and Paddle's spectral norms) and reads its
//! records.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// One peers.py record (only the fields the comparison uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// `torch_hook`, `torch_param`, `paddle` or `plain`.
    pub peer: String,
    /// `torch` or `paddle`.
    pub framework: String,
    /// Thread count of the run.
    pub threads: usize,
    /// Shape name.
    pub shape: String,
    /// Power iterations, absent for plain-layer records.
    pub n_power_iterations: Option<usize>,
    /// `step_ovh`, `hook_train`, `hook_eval`, `eval_sn`, `eval_plain`, …
    pub measure: String,
    /// Median in microseconds.
    pub median_us: f64,
}

#[derive(Deserialize)]
struct Results {
    records: Vec<Record>,
}

/// What to ask peers.py for.
pub struct Request<'a> {
    /// Python interpreter with torch and paddlepaddle installed.
    pub python: &'a str,
    /// Path of peers.py.
    pub script: &'a Path,
    /// Comma-separated lists, as peers.py takes them.
    pub threads: &'a str,
    /// Shape names.
    pub shapes: &'a str,
    /// Power-iteration counts.
    pub iters: &'a str,
    /// Seconds of timed calls per measurement.
    pub budget: f64,
    /// Where peers.py writes its JSON.
    pub out: &'a Path,
    /// Merge into `out` (records of other shapes kept) instead of starting it afresh.
    pub append: bool,
    /// `torch`, `paddle` or both, comma-separated.
    pub frameworks: &'a str,
    /// Workers with glibc's malloc told to keep freed memory in the process and to use one
    /// arena (peers.py's `--malloc-tuned`): no fresh pages, so no page faults, for W-sized
    /// temporaries. Otherwise glibc's defaults, whatever this process was started with.
    pub malloc_tuned: bool,
    /// Only the spectral-norm computation alone (peers.py's `--parts alone`), not the steps,
    /// the eval forwards or the primitives.
    pub alone_only: bool,
}

/// The suffix [`read_tuned`] gives the peer names of a malloc-tuned run's records
/// (`torch_hook+malloc-tuned`), so that both runs' records can sit in one list.
pub const TUNED: &str = "+malloc-tuned";

/// Runs peers.py, echoing its progress lines; its records are then in `request.out`.
pub fn run(request: &Request) -> Result<()> {
    let mut child = Command::new(request.python)
        .arg(request.script)
        .args([
            "run",
            "--threads",
            request.threads,
            "--shapes",
            request.shapes,
        ])
        .args([
            "--iters",
            request.iters,
            "--budget",
            &request.budget.to_string(),
        ])
        // peers.py's default bound of 240 s per worker cut PyTorch's lin8192 n = 1 worker short
        // at 1 thread (two spectral norms, each with ~1.3 s steps in ABBA pairs).
        .args([
            "--timeout",
            "900",
            "--quiet-wait",
            "60",
            "--frameworks",
            request.frameworks,
            "--out",
        ])
        .arg(request.out)
        .args(request.append.then_some("--append"))
        .args(request.malloc_tuned.then_some("--malloc-tuned"))
        .args(
            request
                .alone_only
                .then_some(["--parts", "alone"])
                .into_iter()
                .flatten(),
        )
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} {}", request.python, request.script.display()))?;
    let stdout = child.stdout.take().context("peers.py stdout")?;
    for line in BufReader::new(stdout).lines() {
        eprintln!("  peers: {}", line?);
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("peers.py exited with {status}");
    }
    Ok(())
}

/// Reads a peers.py results file.
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let results: Results =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(results.records)
}

/// Reads a malloc-tuned run's results file, its peer names suffixed with [`TUNED`].
pub fn read_tuned(path: &Path) -> Result<Vec<Record>> {
    let mut records = read(path)?;
    for record in &mut records {
        record.peer.push_str(TUNED);
    }
    Ok(records)
}

/// Looks up one median.
pub fn median(
    records: &[Record],
    peer: &str,
    threads: usize,
    shape: &str,
    measure: &str,
    n: Option<usize>,
) -> Option<f64> {
    records
        .iter()
        .find(|r| {
            r.peer == peer
                && r.threads == threads
                && r.shape == shape
                && r.measure == measure
                && (n.is_none() || r.n_power_iterations == n)
        })
        .map(|r| r.median_us)
}

/// The plain layer's median for a framework (peers.py stores it under peer `plain`).
pub fn plain(
    records: &[Record],
    framework: &str,
    threads: usize,
    shape: &str,
    measure: &str,
) -> Option<f64> {
    records
        .iter()
        .find(|r| {
            r.peer == "plain"
                && r.framework == framework
                && r.threads == threads
                && r.shape == shape
                && r.measure == measure
        })
        .map(|r| r.median_us)
}
