//! Medians of individually timed calls, the way `../shared/bench/peers.py` takes them, so that
//! our numbers and the peers' are the same statistic.

use std::time::{Duration, Instant};

/// Summary of one measurement, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Median of the timed calls (or of the paired differences).
    pub median_us: f64,
    /// Fastest call.
    pub min_us: f64,
    /// Number of timed calls.
    pub reps: usize,
    /// A distribution-free 95% confidence interval of the median: the order statistics
    /// `n/2 ∓ 0.98·√n` of the samples (absent in runs saved before it was recorded). A paired
    /// overhead whose interval holds 0 is within noise.
    #[serde(default)]
    pub ci95_us: Option<[f64; 2]>,
}

impl Stats {
    /// Whether the median is distinguishable from 0: its 95% interval excludes 0. `None` when
    /// the interval was not recorded.
    pub fn excludes_zero(&self) -> Option<bool> {
        self.ci95_us.map(|[low, high]| low > 0.0 || high < 0.0)
    }
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    // The rank of the median is Binomial(n, ½): ±1.96·√n/2 ranks around n/2 hold it at 95%.
    let half_width = 0.98 * (n as f64).sqrt();
    let low = ((n as f64 / 2.0 - half_width).floor().max(0.0)) as usize;
    let high = ((n as f64 / 2.0 + half_width).ceil() as usize).min(n - 1);
    Stats {
        median_us: median,
        min_us: samples[0],
        reps: n,
        ci95_us: Some([samples[low], samples[high]]),
    }
}

fn time_us(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1e6
}

/// Median of individually timed calls after a warm-up, for about `budget` of timed calls.
/// Calls slower than 0.5 s get one warm-up call and three timed calls, as in peers.py.
pub fn bench(f: &mut (dyn FnMut() + Send), budget: Duration) -> Stats {
    let started = Instant::now();
    let first = time_us(f);
    let (warm, min_reps) = if first > 5e5 { (1, 3) } else { (3, 5) };
    let mut calls = 1;
    while calls < warm || (started.elapsed() < Duration::from_millis(150) && calls < 50) {
        f();
        calls += 1;
    }
    let mut samples = Vec::new();
    let timed = Instant::now();
    while samples.len() < min_reps || (samples.len() < 2000 && timed.elapsed() < budget) {
        samples.push(time_us(f));
    }
    stats(samples)
}

/// Result of timing a plain call and a spectrally normalized one in alternation.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Paired {
    /// The spectrally normalized call.
    pub sn: Stats,
    /// The plain call, timed in the same pairs.
    pub plain: Stats,
    /// Median of the per-pair differences `sn - plain`: the overhead.
    pub overhead: Stats,
}

/// How many pairs one paired measurement takes.
#[derive(Debug, Clone, Copy)]
pub struct PairCount {
    /// Taken where they fit in [`STEADY`], even past the budget.
    pub least: usize,
    /// Never more, whatever the budget.
    pub most: usize,
}

/// Training steps: at least 121 pairs, at most 500 (peers.py's `bench_pair` stops at 500).
///
/// A slow step (a 512-channel conv step takes ~100 ms) gives only a handful of pairs in the
/// budget, and the median of a handful of differences between two ~100 ms steps is noise of
/// the size of the overhead itself. 31 pairs were not enough either: four runs of conv512's
/// n = 5 row at 2 threads gave +1.98 to +4.02 ms, where three runs of 121 pairs gave +2.23 to
/// +2.31 ms.
pub const STEP_PAIRS: PairCount = PairCount {
    least: 121,
    most: 500,
};

/// Eval forwards: at least 1000 pairs, at most 5000. The overhead to resolve is a few µs on
/// forwards that vary by tens of µs, or by milliseconds for conv512's 15–20 ms: three runs of
/// that row at 2 threads with ~270 pairs gave −47, −17 and +59 µs, where 0.1× of PyTorch's
/// overhead is ~140 µs.
pub const EVAL_PAIRS: PairCount = PairCount {
    least: 1000,
    most: 5000,
};

/// Time allowed for reaching [`PairCount::least`]: 121 pairs of conv512's ~105 ms steps at
/// 1 thread.
const STEADY: Duration = Duration::from_secs(30);

/// peers.py's `--budget` for a shape whose plain training step takes `plain_step_us` here:
/// enough for about as many step pairs as [`STEP_PAIRS`] makes ours take, with `default` as
/// the least and half of [`STEADY`] as the most (peers.py times step pairs for twice its
/// budget).
///
/// peers.py stops at 7 pairs once its budget is spent, which a 512-channel conv step (~75 ms
/// in PyTorch) spends at once, while ours takes at least `STEP_PAIRS.least`: the two medians
/// of a ratio would rest on very different samples. Our plain step stands in for theirs, which is
/// not known before peers.py runs.
pub fn peers_budget(default: f64, plain_step_us: f64) -> f64 {
    let wanted = STEP_PAIRS.least as f64 * plain_step_us * 1e-6;
    wanted.min(STEADY.as_secs_f64() / 2.0).max(default)
}

/// Times `plain` and `sn` in ABBA alternation so that drift and allocator state hit both, as
/// peers.py's `bench_pair` does; the overhead is the median of per-pair differences. Takes at
/// least 7 pairs (as peers.py), `pairs.least` where they fit in [`STEADY`], more while within
/// `budget`, up to `pairs.most`.
pub fn bench_pair(
    plain: &mut dyn FnMut(),
    sn: &mut dyn FnMut(),
    budget: Duration,
    pairs: PairCount,
) -> Paired {
    let warm = Instant::now();
    plain();
    sn();
    if warm.elapsed() < Duration::from_millis(500) {
        plain();
        sn();
    }
    let (mut a, mut b, mut d) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    let more = |taken: usize| {
        let elapsed = started.elapsed();
        taken < 7
            || (taken < pairs.least && elapsed < STEADY)
            || (taken < pairs.most && elapsed < budget)
    };
    while more(d.len()) {
        let (ta, tb) = if d.len() % 2 == 0 {
            let ta = time_us(plain);
            (ta, time_us(sn))
        } else {
            let tb = time_us(sn);
            (time_us(plain), tb)
        };
        a.push(ta);
        b.push(tb);
        d.push(tb - ta);
    }
    Paired {
        sn: stats(b),
        plain: stats(a),
        overhead: stats(d),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{PairCount, bench_pair, peers_budget};

    #[test]
    fn the_median_interval_holds_zero_only_when_the_samples_straddle_it() {
        // 31 samples: ranks 10 and 21 (0-based) bound the median at 95%.
        let shifted = |offset: f64| super::stats((0..31).map(|i| i as f64 + offset).collect());
        assert_eq!(shifted(0.0).ci95_us, Some([10.0, 21.0]));
        assert_eq!(shifted(-15.0).excludes_zero(), Some(false));
        assert_eq!(shifted(-9.5).excludes_zero(), Some(true));
        assert_eq!(shifted(-21.5).excludes_zero(), Some(true));
        assert_eq!(super::stats(vec![4.0]).ci95_us, Some([4.0, 4.0]));
    }

    #[test]
    fn pairings_take_the_least_past_the_budget_and_never_more_than_the_most() {
        let pairs = |budget: Duration, count: PairCount| {
            bench_pair(&mut || {}, &mut || {}, budget, count)
                .overhead
                .reps
        };
        // No budget: the least is still taken, as fast calls fit in the steady time.
        let least = PairCount {
            least: 50,
            most: 60,
        };
        assert_eq!(pairs(Duration::ZERO, least), 50);
        // A budget far larger than needed stops at the most.
        let most = PairCount {
            least: 10,
            most: 20,
        };
        assert_eq!(pairs(Duration::from_secs(60), most), 20);
        // Never fewer than peers.py's 7.
        let few = PairCount { least: 0, most: 0 };
        assert_eq!(pairs(Duration::ZERO, few), 7);
    }

    #[test]
    fn peers_budget_buys_about_min_pairs_of_slow_steps_within_bounds() {
        // A 100 µs step: the default budget already buys thousands of pairs.
        assert_eq!(peers_budget(0.6, 100.0), 0.6);
        // A 100 ms conv step: 121 steps' worth, so ~121 pairs in peers.py's 2 × budget.
        assert!((peers_budget(0.6, 100_000.0) - 12.1).abs() < 1e-9);
        // A 2 s step: capped at half of the 30 s ours allows itself.
        assert_eq!(peers_budget(0.6, 2_000_000.0), 15.0);
        // A larger default is never lowered.
        assert_eq!(peers_budget(20.0, 2_000_000.0), 20.0);
    }
}
