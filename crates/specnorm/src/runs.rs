//! Training runs, each in a process of its own, as many at once as there are cores.
//!
//! Why processes: Burn's autodiff numbers its graph nodes from one counter per process, and the
//! order in which a backward pass sums gradients follows those numbers. Two runs trained side by
//! side in threads take numbers from the same counter in whatever order the scheduler gives, so
//! their sums come out in another order each time, and a GAN's training (chaotic) ends
//! elsewhere: one seed gave Fréchet distances of 72 and 108 in two invocations. A run alone in
//! its process numbers its nodes the same way every time, so a seed reproduces its result
//! exactly, whatever ran before or beside it and however many cores there are.
//!
//! The command re-runs itself (same arguments) with [`JOB`] naming one job; that process trains
//! only the job, reports its progress on stdout, writes the result as JSON to [`OUTPUT`] and
//! exits.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Environment variable naming the job a worker process runs.
pub const JOB: &str = "SPECNORM_JOB";
/// Environment variable naming the file a worker writes its result to.
pub const OUTPUT: &str = "SPECNORM_JOB_OUTPUT";
/// Environment variable capping the worker processes at once (default: the cores).
pub const WORKERS: &str = "SPECNORM_WORKERS";

/// One run to do: its bar's label, its length in steps, and what it needs.
pub struct Job<C> {
    /// The progress bar's prefix.
    pub label: String,
    /// Steps, the bar's length.
    pub steps: usize,
    /// The run's configuration.
    pub config: C,
}

/// Runs every job in a worker process of its own and returns the results in the jobs' order.
///
/// In a worker (the process [`JOB`] names a job for) it runs that job with `run` (building
/// and training its networks), writes the result and exits the process: the caller's code
/// after this call never runs there, so everything the command computes before it must be
/// cheap or needed by the jobs.
pub fn run_all<C, R: Serialize + DeserializeOwned>(
    jobs: &[Job<C>],
    bars: &MultiProgress,
    run: impl Fn(&C, &ProgressBar) -> R,
) -> Result<Vec<R>> {
    if let Some(index) = std::env::var_os(JOB) {
        let index = job_index(&index, jobs.len())?;
        let job = &jobs[index];
        let result = work(|bar| run(&job.config, bar));
        let output = std::env::var_os(OUTPUT).ok_or_else(|| anyhow!("{OUTPUT} is not set"))?;
        let json = serde_json::to_vec(&result).context("encoding a job's result")?;
        std::fs::write(&output, json).with_context(|| format!("writing {output:?}"))?;
        std::process::exit(0);
    }
    if cfg!(test) {
        // A unit test's executable is the test harness, not specnorm: run in process.
        return Ok(jobs
            .iter()
            .map(|job| run(&job.config, &ProgressBar::hidden()))
            .collect());
    }
    let exe = std::env::current_exe().context("locating the specnorm executable")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let style = ProgressStyle::with_template("{prefix:>22} {bar:40} {pos}/{len} steps {elapsed}")
        .context("progress template")?;
    let mut results = Vec::with_capacity(jobs.len());
    let indices: Vec<usize> = (0..jobs.len()).collect();
    for wave in indices.chunks(workers()) {
        let handles: Vec<_> = wave
            .iter()
            .map(|&index| {
                let bar = bars.add(ProgressBar::new(jobs[index].steps as u64));
                bar.set_style(style.clone());
                bar.set_prefix(jobs[index].label.clone());
                let (exe, args) = (exe.clone(), args.clone());
                std::thread::spawn(move || {
                    let result = run_worker(&exe, &args, index, &bar);
                    bar.finish();
                    result
                })
            })
            .collect();
        for handle in handles {
            let json = handle
                .join()
                .map_err(|_| anyhow!("a worker's watcher panicked"))??;
            results.push(serde_json::from_slice(&json).context("decoding a job's result")?);
        }
    }
    Ok(results)
}

fn workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    std::env::var(WORKERS)
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(cores)
}

fn job_index(text: &std::ffi::OsStr, jobs: usize) -> Result<usize> {
    let index: usize = text
        .to_str()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| anyhow!("{JOB}={text:?} is not a job number"))?;
    if index >= jobs {
        bail!("{JOB}={index}, but this command has {jobs} jobs");
    }
    Ok(index)
}

/// Runs `task` with a hidden bar whose position is printed to stdout, one line per change.
fn work<R>(task: impl FnOnce(&ProgressBar) -> R) -> R {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut reported = u64::MAX;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let position = bar.position();
                if position != reported {
                    // The parent may be gone (interrupted): nothing to report to, then.
                    let _ = writeln!(std::io::stdout(), "{position}");
                    reported = position;
                }
                if finished {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let result = task(&bar);
        done.store(true, std::sync::atomic::Ordering::Release);
        result
    })
}

/// Starts the worker for job `index`, mirrors its progress on `bar`, and returns its result.
fn run_worker(exe: &Path, args: &[OsString], index: usize, bar: &ProgressBar) -> Result<Vec<u8>> {
    let output = scratch_file(index);
    let mut child = Command::new(exe)
        .args(args)
        .env(JOB, index.to_string())
        .env(OUTPUT, &output)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting a worker ({})", exe.display()))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(position) = line.trim().parse() {
                bar.set_position(position);
            }
        }
    }
    let finished = child.wait_with_output().context("waiting for a worker")?;
    let result = std::fs::read(&output);
    let _ = std::fs::remove_file(&output);
    if !finished.status.success() {
        let stderr = String::from_utf8_lossy(&finished.stderr);
        bail!(
            "job {index}'s worker failed ({}): {}",
            finished.status,
            stderr.trim()
        );
    }
    result.with_context(|| format!("reading job {index}'s result"))
}

fn scratch_file(index: usize) -> PathBuf {
    std::env::temp_dir().join(format!("specnorm-job-{}-{index}.json", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_reports_its_progress_and_returns_the_tasks_result() {
        let result = work(|bar| {
            bar.inc(3);
            std::thread::sleep(Duration::from_millis(250));
            7
        });
        assert_eq!(result, 7);
    }

    #[test]
    fn job_numbers_are_checked() {
        assert_eq!(job_index("2".as_ref(), 3).unwrap(), 2);
        assert!(
            job_index("3".as_ref(), 3)
                .unwrap_err()
                .to_string()
                .contains("3 jobs")
        );
        assert!(job_index("x".as_ref(), 3).is_err());
    }
}
