//! `sn-bench`: spectral-norm's cost on Burn, measured side by side with PyTorch and Paddle.
//!
//! For each thread count, shape and power-iteration count it times, on Burn's Flex backend
//! (f32), each (thread count, shape) in a process of its own on its main thread as `peers.py`
//! measures the peers: the spectral-norm computation alone in training mode, the training-step
//! overhead over the plain layer (paired alternation, as `peers.py` does) and the eval-forward
//! overhead. It measures the read and write bandwidth at each weight's own size for the floor
//! (`n + 1` reads of W and one write of `W / σ`), then runs `peers.py` in the same invocation
//! (twice for PyTorch: with glibc's default malloc and malloc-tuned) and prints the headline
//! (SN alone against PyTorch's two and Paddle's SN alone), the overheads, the operator mode,
//! and which rows meet the performance targets (`targets`). The last two lines are
//! `worst SN-alone ratio vs PyTorch: Y` and `worst SN-alone ratio vs target: X` (X ≤ 1: every
//! judged row met its target). `--alone-only` measures SN alone only, on both sides;
//! `--malloc-tuned` runs both sides with glibc's malloc tuned; `--no-malloc-tuned` skips
//! PyTorch's second run.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use spectral_norm_bench::report::{self, Row};
use spectral_norm_bench::timing::{EVAL_PAIRS, STEP_PAIRS, bench, bench_pair, peers_budget};
use spectral_norm_bench::workload::{self, SHAPES, Shape};
use spectral_norm_bench::{bandwidth, peers, targets};

/// Spectral-norm cost on Burn versus PyTorch and Paddle (CPU, f32, medians).
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Thread counts (rayon pool size for Burn; OMP/MKL threads for the peers).
    #[arg(long, default_value = "1,2")]
    threads: String,
    /// Shapes: `all` or a comma-separated list of peers.py names (lin256, conv512x512x3x3, …).
    #[arg(long, default_value = "all")]
    shapes: String,
    /// Power-iteration counts.
    #[arg(long, default_value = "1,5")]
    iters: String,
    /// Seconds of timed calls per measurement. peers.py gets more for shapes whose training
    /// step is slow, enough for about as many step pairs as ours takes (up to 15 s).
    #[arg(long, default_value_t = 0.6)]
    budget: f64,
    /// Seconds for each eval-forward pairing, which takes up to 5000 pairs (and at least 1000
    /// where they fit in 30 s): a few µs of overhead on a forward that varies by tens of µs
    /// from call to call (conv64's takes ~2.5 ms in Burn) needs thousands of pairs before the
    /// median settles. On conv64 at 1 thread, four processes gave 0.09–3.22 µs with ~1550 pairs
    /// (8 s) and 0.41–2.28 µs with ~3900 (20 s), against a limit of ~3 µs (0.1× PyTorch's).
    #[arg(long, default_value_t = 20.0)]
    eval_budget: f64,
    /// Python interpreter with `torch` and `paddlepaddle` installed.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The peer benchmark script (shipped beside this crate).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/peers.py"))]
    peers_script: PathBuf,
    /// Reuse a peers.py results file instead of running it.
    #[arg(long)]
    peers_json: Option<PathBuf>,
    /// With `--peers-json`: the malloc-tuned PyTorch run's file (`peers-malloc-tuned.json`)
    /// of the same run.
    #[arg(long, requires = "peers_json")]
    peers_tuned_json: Option<PathBuf>,
    /// Reuse our results file (an earlier run's `ours.json`) instead of measuring; with
    /// `--peers-json`, re-renders that run's report and verdict in seconds.
    #[arg(long)]
    ours_json: Option<PathBuf>,
    /// Measure ours only.
    #[arg(long)]
    no_peers: bool,
    /// Skip peers.py's second PyTorch run, the malloc-tuned one (about a third of a full
    /// run's time): the report's malloc-tuned column stays empty and the step target is held
    /// to the default-malloc PyTorch alone.
    #[arg(long)]
    no_malloc_tuned: bool,
    /// The whole run, ours and the peers, with glibc's malloc tuned (see [`TUNED_MALLOC`]):
    /// sn-bench starts itself again with those settings. No second PyTorch run.
    #[arg(long, conflicts_with = "no_malloc_tuned")]
    malloc_tuned: bool,
    /// Only the spectral-norm computation alone (and the floor), ours and the peers': no
    /// training steps, eval forwards or operator mode. Minutes instead of an hour.
    #[arg(long)]
    alone_only: bool,
    /// Forwards per training step before its one backward: 2 is a discriminator run on real and
    /// on fake data. Only the training-step columns change. peers.py's steps make one, so more
    /// needs `--no-peers`.
    #[arg(long, default_value = "1")]
    uses: NonZeroUsize,
    /// Output folder for ours.json, peers.json and report.md.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Internal: measure ours for one thread count and one shape in this process, on its main
    /// thread, and print the rows as JSON (what [`measure_ours`] starts for each pair).
    #[arg(long, hide = true)]
    worker: bool,
}

fn list(text: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(|t| {
            t.trim()
                .parse()
                .with_context(|| format!("not a count: {t:?}"))
        })
        .collect()
}

fn shapes(text: &str) -> Result<Vec<Shape>> {
    if text == "all" {
        return Ok(SHAPES.to_vec());
    }
    text.split(',')
        .map(|name| {
            SHAPES
                .iter()
                .find(|s| s.name == name.trim())
                .copied()
                .with_context(|| format!("unknown shape {name:?}"))
        })
        .collect()
}

/// Time allowed per measurement.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Timed calls of one kind, and half a training-step pairing.
    calls: Duration,
    /// One eval-forward pairing.
    eval: Duration,
}

/// What one row measures: a shape, a power-iteration count, the uses per step, and whether
/// only the spectral-norm computation alone.
#[derive(Debug, Clone, Copy)]
struct Case<'a> {
    shape: &'a Shape,
    n: usize,
    uses: usize,
    alone_only: bool,
}

fn measure(case: Case<'_>, first_n: bool, threads: usize, budget: Budget) -> Row {
    let Case {
        shape,
        n,
        uses,
        alone_only,
    } = case;
    let mut calls = workload::calls(shape, n, uses);
    let sn_train = bench(&mut calls.sn_train, budget.calls);
    let step = (!alone_only).then(|| {
        bench_pair(
            &mut calls.step_plain,
            &mut calls.step_sn,
            2 * budget.calls,
            STEP_PAIRS,
        )
    });
    let operator = calls
        .sn_train_operator
        .as_mut()
        .filter(|_| !alone_only)
        .map(|call| bench(call, budget.calls));
    let (sn_eval, eval) = if first_n && !alone_only {
        (
            Some(bench(&mut calls.sn_eval, budget.calls)),
            Some(bench_pair(
                &mut calls.eval_plain,
                &mut calls.eval_sn,
                budget.eval,
                EVAL_PAIRS,
            )),
        )
    } else {
        (None, None)
    };
    eprintln!(
        "  ours {threads}T {:16} n={n}: SN alone {}{}",
        shape.name,
        report::fmt_us(sn_train.median_us),
        step.map_or(String::new(), |step| format!(
            ", step +{}",
            report::fmt_us(step.overhead.median_us)
        ))
    );
    Row {
        threads,
        shape: shape.name.into(),
        numel: shape.numel(),
        n,
        uses,
        sn_train,
        step,
        sn_eval,
        eval,
        operator,
        floor_us: bandwidth::floor_us(shape.numel(), n),
        plain_weight_offset: calls.plain_weight_offset,
    }
}

/// Measures ours, each (thread count, shape) in a process of its own, as peers.py measures
/// PyTorch and Paddle: a fresh heap for every shape, and the calls timed on the process's main
/// thread. That thread matters with glibc's default malloc: every other thread allocates from
/// an arena of its own, and there a W-sized temporary (the generic path's `W/σ`) came back as
/// fresh pages on every use once an earlier measurement had shaped the heap (lin1024, n = 5:
/// 2.5–3.1 ms after n = 1 on a rayon worker, 0.93 ms on the main thread, 2026-12-07).
fn measure_ours(args: &Args) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for threads in list(&args.threads)? {
        for shape in shapes(&args.shapes)? {
            rows.extend(measure_in_child(args, threads, shape.name)?);
        }
    }
    Ok(rows)
}

/// This program again with `--worker` for one thread count and shape; its rows.
fn measure_in_child(args: &Args, threads: usize, shape: &str) -> Result<Vec<Row>> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg("--worker")
        .args(["--threads", &threads.to_string(), "--shapes", shape])
        .args(["--iters", &args.iters, "--uses", &args.uses.to_string()])
        .args(["--budget", &args.budget.to_string()])
        .args(["--eval-budget", &args.eval_budget.to_string()])
        .stderr(std::process::Stdio::inherit());
    if args.alone_only {
        command.arg("--alone-only");
    }
    let output = command
        .output()
        .with_context(|| format!("starting the measurement of {shape} at {threads} thread(s)"))?;
    if !output.status.success() {
        bail!(
            "the measurement of {shape} at {threads} thread(s) failed: {}",
            output.status
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the rows of {shape} at {threads} thread(s)"))
}

/// `--worker`: the rows of one thread count and the requested shapes, measured on this
/// thread, which joins rayon's global pool as its first worker (as OpenMP's main thread joins
/// PyTorch's), so a one-thread pool runs everything here.
fn measure_here(args: &Args) -> Result<Vec<Row>> {
    let [threads] = list(&args.threads)?[..] else {
        bail!("--worker measures one thread count, not {:?}", args.threads);
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .use_current_thread()
        .build_global()?;
    let budget = Budget {
        calls: Duration::from_secs_f64(args.budget),
        eval: Duration::from_secs_f64(args.eval_budget),
    };
    let iters = list(&args.iters)?;
    let mut rows = Vec::new();
    for shape in &shapes(&args.shapes)? {
        for (i, &n) in iters.iter().enumerate() {
            let case = Case {
                shape,
                n,
                uses: args.uses.get(),
                alone_only: args.alone_only,
            };
            rows.push(measure(case, i == 0, threads, budget));
        }
    }
    Ok(rows)
}

/// peers.py's budget per shape (see [`peers_budget`]), from our slowest plain step of it.
fn peer_budgets(args: &Args, rows: &[Row]) -> Result<Vec<(String, f64)>> {
    let budgets = shapes(&args.shapes)?
        .iter()
        .map(|shape| {
            let plain_step_us = rows
                .iter()
                .filter(|row| row.shape == shape.name)
                .filter_map(|row| row.step.as_ref())
                .map(|step| step.plain.median_us)
                .fold(0.0, f64::max);
            (
                shape.name.to_string(),
                peers_budget(args.budget, plain_step_us),
            )
        })
        .collect();
    Ok(budgets)
}

/// peers.py's records: its run with glibc's default malloc (PyTorch and Paddle) and, for
/// PyTorch, the malloc-tuned run, whose peer names carry [`peers::TUNED`].
fn peer_records(args: &Args, rows: &[Row]) -> Result<Vec<peers::Record>> {
    if let Some(path) = &args.peers_json {
        let mut records = peers::read(path)?;
        if let Some(tuned) = &args.peers_tuned_json {
            records.extend(peers::read_tuned(tuned)?);
        }
        return Ok(records);
    }
    if args.no_peers {
        return Ok(Vec::new());
    }
    if !args.peers_script.exists() {
        bail!(
            "{} not found (use --no-peers to measure ours only)",
            args.peers_script.display()
        );
    }
    let out = args.out.join("peers.json");
    let tuned = args.out.join("peers-malloc-tuned.json");
    let _ = std::fs::remove_file(&tuned);
    // A whole run malloc-tuned has one peers.py run, itself malloc-tuned; otherwise the second,
    // malloc-tuned one is PyTorch's only.
    let both = "paddle,torch";
    let runs: &[(bool, &PathBuf, &str)] = if args.malloc_tuned {
        &[(true, &out, both)]
    } else if args.no_malloc_tuned {
        &[(false, &out, both)]
    } else {
        &[(false, &out, both), (true, &tuned, "torch")]
    };
    for &(malloc_tuned, file, frameworks) in runs {
        let _ = std::fs::remove_file(file);
        // One peers.py run per shape, each with its own budget, merged into one file.
        for (i, (shape, budget)) in peer_budgets(args, rows)?.iter().enumerate() {
            peers::run(&peers::Request {
                python: &args.python,
                script: &args.peers_script,
                threads: &args.threads,
                shapes: shape,
                iters: &args.iters,
                budget: *budget,
                out: file,
                append: i > 0,
                frameworks,
                malloc_tuned,
                alone_only: args.alone_only,
            })?;
        }
    }
    let mut records = peers::read(&out)?;
    if runs.len() > 1 {
        records.extend(peers::read_tuned(&tuned)?);
    }
    Ok(records)
}

/// glibc's malloc settings of a `--malloc-tuned` run (peers.py's `--malloc-tuned` sets the
/// same): freed memory stays in the process, so a W-sized temporary reuses pages instead of
/// faulting fresh ones in, and every thread allocates from the main arena, because glibc's
/// other arenas map each block of 64 MiB or more afresh whatever the thresholds (the worker
/// threads of both sides, rayon's and OpenMP's, allocate the parts of parallel operations).
const TUNED_MALLOC: [(&str, &str); 3] = [
    ("MALLOC_MMAP_THRESHOLD_", "2147483647"),
    ("MALLOC_TRIM_THRESHOLD_", "4294967295"),
    ("MALLOC_ARENA_MAX", "1"),
];

/// glibc reads its malloc settings when the process starts, so a `--malloc-tuned` run starts
/// this program again with them; `None` when they are already in effect.
fn restart_malloc_tuned() -> Result<Option<std::process::ExitStatus>> {
    let tuned = TUNED_MALLOC
        .iter()
        .all(|(key, value)| std::env::var(key).is_ok_and(|set| set == *value));
    if tuned {
        return Ok(None);
    }
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .envs(TUNED_MALLOC)
        .status()
        .context("restarting sn-bench with the tuned malloc settings")?;
    Ok(Some(status))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.malloc_tuned
        && let Some(status) = restart_malloc_tuned()?
    {
        std::process::exit(status.code().unwrap_or(1));
    }
    if args.worker {
        println!("{}", serde_json::to_string(&measure_here(&args)?)?);
        return Ok(());
    }
    if args.uses.get() != 1 && !args.no_peers {
        // Checked first: measuring ours takes minutes.
        bail!(
            "peers.py's steps make one forward each: --uses {} needs --no-peers",
            args.uses
        );
    }
    std::fs::create_dir_all(&args.out)?;
    let rows = match &args.ours_json {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<Vec<Row>>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => measure_ours(&args)?,
    };
    std::fs::write(
        args.out.join("ours.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    let records = peer_records(&args, &rows)?;
    let mut table = if args.malloc_tuned {
        let settings: Vec<String> = TUNED_MALLOC
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "Allocator: glibc malloc tuned ({}), ours and the peers.\n",
            settings.join(" ")
        )
    } else {
        String::new()
    };
    table.push_str(&report::render(&rows, &records));
    let verdict = targets::check(&rows, &records);
    table.push_str(&targets::render(&verdict));
    std::fs::write(args.out.join("report.md"), &table)?;
    println!("{table}");
    println!("{}", targets::summary(&verdict));
    let shown = |ratio: Option<f64>| {
        ratio.map_or("n/a (PyTorch not measured)".into(), |r| format!("{r:.3}"))
    };
    let (vs_torch, vs_target) = targets::worst_alone(&rows, &records);
    println!("worst SN-alone ratio vs PyTorch: {}", shown(vs_torch));
    println!("worst SN-alone ratio vs target: {}", shown(vs_target));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TUNED_MALLOC;

    /// peers.py keeps its own copy of the settings (it runs on its own too): both must tune
    /// the same way, or a `--malloc-tuned` run would compare two different allocators.
    #[test]
    fn peers_py_tunes_malloc_with_the_same_settings() {
        let script = include_str!("../peers.py");
        let line = script
            .lines()
            .skip_while(|line| !line.starts_with("TUNED_MALLOC = {"))
            .take_while(|line| !line.trim().is_empty())
            .collect::<String>();
        let keys = line.matches(": \"").count();
        assert_eq!(keys, TUNED_MALLOC.len(), "{line}");
        for (key, value) in TUNED_MALLOC {
            assert!(
                line.contains(&format!("\"{key}\": \"{value}\"")),
                "{key}: {line}"
            );
        }
    }
}
