//! The comparison table: ours against PyTorch, Paddle and the memory floor, per row.

use std::fmt::Write;

use crate::peers::{self, Record};
use crate::timing::{Paired, Stats};
use crate::workload::Shape;

/// Our measurements for one (threads, shape, n).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// Rayon pool size.
    pub threads: usize,
    /// Shape name.
    pub shape: String,
    /// Weight elements.
    pub numel: usize,
    /// Power iterations.
    pub n: usize,
    /// Forwards per training step before its backward (1 in the comparison with peers.py).
    #[serde(default = "one_use")]
    pub uses: usize,
    /// The spectral-norm computation alone, training mode.
    pub sn_train: Stats,
    /// Training step, paired with the plain layer.
    pub step: Paired,
    /// The spectral-norm computation alone, eval mode (first `n` only).
    pub sn_eval: Option<Stats>,
    /// Eval forward, paired with the plain layer (first `n` only).
    pub eval: Option<Paired>,
    /// Floor: `n + 1` reads of the weight at the measured bandwidth, in µs.
    pub floor_us: f64,
    /// Bytes from the last 64-byte boundary to the plain layer's weight (ours: 0).
    #[serde(default)]
    pub plain_weight_offset: usize,
}

fn one_use() -> usize {
    1
}

/// Floor in µs for `n` iterations over `shape` at `bandwidth` bytes/s.
pub fn floor_us(shape: &Shape, n: usize, bandwidth: f64) -> f64 {
    floor_bytes(shape.numel(), n) / bandwidth * 1e6
}

/// Bytes the floor reads: `n + 1` passes over an f32 weight of `numel` elements.
fn floor_bytes(numel: usize, n: usize) -> f64 {
    (n + 1) as f64 * (numel * 4) as f64
}

/// The read bandwidth (bytes/s) per thread count that `rows`' floors were computed from, in
/// the order the thread counts first appear: what a saved run needs to be rendered again.
pub fn bandwidths_of(rows: &[Row]) -> Vec<(usize, f64)> {
    let mut out: Vec<(usize, f64)> = Vec::new();
    for row in rows {
        if out.iter().all(|(threads, _)| *threads != row.threads) {
            let bytes = floor_bytes(row.numel, row.n);
            out.push((row.threads, bytes / row.floor_us * 1e6));
        }
    }
    out
}

/// Formats microseconds as [`fmt_us`] does, with two decimals below 10 µs: an eval-mode cache
/// hit takes a fraction of a microsecond, which `fmt_us` would print as "0 µs".
pub fn fmt_fine_us(us: f64) -> String {
    if us.abs() < 10.0 {
        let sign = if us < 0.0 { "−" } else { "" };
        format!("{sign}{:.2} µs", us.abs())
    } else {
        fmt_us(us)
    }
}

/// Formats microseconds as peers.py does.
pub fn fmt_us(us: f64) -> String {
    let sign = if us < 0.0 { "−" } else { "" };
    let a = us.abs();
    let body = if a >= 1e4 {
        format!("{:.0} ms", a / 1e3)
    } else if a >= 1e3 {
        format!("{:.2} ms", a / 1e3)
    } else {
        format!("{a:.0} µs")
    };
    format!("{sign}{body}")
}

/// `ours / theirs` where `theirs` is a positive reference.
pub(crate) fn ratio(ours: f64, theirs: Option<f64>) -> Option<f64> {
    theirs.filter(|t| *t > 0.0).map(|t| ours / t)
}

fn fmt_opt(value: Option<f64>, f: impl Fn(f64) -> String) -> String {
    value.map(f).unwrap_or_else(|| "–".into())
}

/// PyTorch's smaller training-step overhead of its two spectral norms: we compare against the
/// stronger peer.
pub(crate) fn torch_step(records: &[Record], row: &Row) -> Option<f64> {
    let get = |peer| {
        peers::median(
            records,
            peer,
            row.threads,
            &row.shape,
            "step_ovh",
            Some(row.n),
        )
    };
    match (get("torch_hook"), get("torch_param")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn torch_eval_alone(records: &[Record], row: &Row) -> Option<f64> {
    ["torch_hook", "torch_param"]
        .iter()
        .filter_map(|peer| peers::median(records, peer, row.threads, &row.shape, "hook_eval", None))
        .reduce(f64::min)
}

/// PyTorch's smaller eval-forward overhead of its two spectral norms.
pub(crate) fn torch_eval(records: &[Record], row: &Row) -> Option<f64> {
    let plain = peers::plain(records, "torch", row.threads, &row.shape, "eval_plain")?;
    ["torch_hook", "torch_param"]
        .iter()
        .filter_map(|peer| peers::median(records, peer, row.threads, &row.shape, "eval_sn", None))
        .map(|sn| sn - plain)
        .reduce(f64::min)
}

/// The tables, and the worst training-step ratio against PyTorch over rows where PyTorch's
/// overhead is positive.
pub fn render(
    rows: &[Row],
    records: &[Record],
    bandwidths: &[(usize, f64)],
) -> (String, Option<f64>) {
    let mut out = String::new();
    let mut worst: Option<f64> = None;
    for &(threads, bandwidth) in bandwidths {
        let these: Vec<&Row> = rows.iter().filter(|r| r.threads == threads).collect();
        let _ = writeln!(
            out,
            "\n## {threads} thread(s); read bandwidth {:.1} GB/s\n",
            bandwidth / 1e9
        );
        if let Some(row) = these.iter().find(|row| row.uses != 1) {
            let _ = writeln!(
                out,
                "Training steps make {} forwards before their one backward.\n",
                row.uses
            );
        }
        out.push_str("| shape | n | ours: SN alone | floor | ×floor | ours: step +ovh | PyTorch +ovh | Paddle +ovh | ours/PyTorch | ours/Paddle |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        for row in &these {
            let ovh = row.step.overhead.median_us;
            let torch = torch_step(records, row);
            let paddle = peers::median(
                records,
                "paddle",
                threads,
                &row.shape,
                "step_ovh",
                Some(row.n),
            );
            let vs_torch = ratio(ovh, torch);
            if let Some(r) = vs_torch {
                worst = Some(worst.map_or(r, |w: f64| w.max(r)));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
                row.shape,
                row.n,
                fmt_us(row.sn_train.median_us),
                fmt_us(row.floor_us),
                row.sn_train.median_us / row.floor_us,
                fmt_us(ovh),
                fmt_opt(torch, fmt_us),
                fmt_opt(paddle, fmt_us),
                fmt_opt(vs_torch, |r| format!("{r:.3}")),
                fmt_opt(ratio(ovh, paddle), |r| format!("{r:.3}")),
            );
        }
        out.push_str(&offsets_line(&these));
        out.push_str("\n| shape | ours: SN alone (eval) | PyTorch: SN alone (eval) | ours/PyTorch | ours: eval fwd +ovh | PyTorch eval fwd +ovh | ours/PyTorch |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for row in these.iter().filter(|r| r.eval.is_some()) {
            let ovh = row.eval.map(|p| p.overhead.median_us).unwrap_or(f64::NAN);
            let torch = torch_eval(records, row);
            let alone = row.sn_eval.map(|s| s.median_us);
            let torch_alone = torch_eval_alone(records, row);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.shape,
                fmt_opt(alone, fmt_fine_us),
                fmt_opt(torch_alone, fmt_us),
                fmt_opt(alone.and_then(|a| ratio(a, torch_alone)), |r| format!(
                    "{r:.3}"
                )),
                fmt_fine_us(ovh),
                fmt_opt(torch, fmt_us),
                fmt_opt(ratio(ovh, torch), |r| format!("{r:.3}")),
            );
        }
    }
    (out, worst)
}

/// Where the plain layers' weights started, per row: the Flex matmul is faster on a weight that
/// starts on a cache line, as our `W / σ` always does (and, from 2 MiB, on huge pages, which
/// ours ask Linux for and Burn's allocations do not).
fn offsets_line(rows: &[&Row]) -> String {
    let each: Vec<String> = rows
        .iter()
        .map(|r| format!("{} n={} {} B", r.shape, r.n, r.plain_weight_offset))
        .collect();
    format!(
        "\nPlain layers' weights, bytes past a 64-byte line (ours start on one, and from 2 MiB on \
         Linux ask for transparent huge pages, which Burn's allocations do not): {}.\n",
        each.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::{Row, fmt_fine_us, fmt_us, render};

    fn row_json(uses: Option<usize>) -> String {
        let stats = r#"{"median_us": 10.0, "min_us": 9.0, "reps": 31}"#;
        let uses = uses.map_or(String::new(), |u| format!(r#""uses": {u},"#));
        format!(
            r#"{{"threads": 1, "shape": "lin256", "numel": 65536, "n": 1, {uses}
                "sn_train": {stats},
                "step": {{"sn": {stats}, "plain": {stats}, "overhead": {stats}}},
                "sn_eval": null, "eval": null, "floor_us": 5.0}}"#
        )
    }

    #[test]
    fn steps_of_several_uses_are_labelled_and_older_results_read_as_one_use() {
        let old: Row = serde_json::from_str(&row_json(None)).unwrap();
        assert_eq!(old.uses, 1);
        let (table, _) = render(&[old], &[], &[(1, 20e9)]);
        assert!(!table.contains("forwards before"), "{table}");

        let two: Row = serde_json::from_str(&row_json(Some(2))).unwrap();
        let (table, _) = render(&[two], &[], &[(1, 20e9)]);
        assert!(
            table.contains("Training steps make 2 forwards before their one backward."),
            "{table}"
        );
    }

    #[test]
    fn a_saved_run_gives_back_the_bandwidth_its_floors_came_from() {
        let shape = &crate::workload::SHAPES[1];
        let mut row: Row = serde_json::from_str(&row_json(None)).unwrap();
        (row.numel, row.n, row.threads) = (shape.numel(), 5, 2);
        row.floor_us = super::floor_us(shape, 5, 26.2e9);
        let mut other = row.clone();
        other.threads = 1;
        other.floor_us = super::floor_us(shape, 5, 40e9);
        let got = super::bandwidths_of(&[row.clone(), row, other]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 2);
        assert!((got[0].1 - 26.2e9).abs() < 1.0, "{got:?}");
        assert!((got[1].1 - 40e9).abs() < 1.0, "{got:?}");
    }

    #[test]
    fn sub_microsecond_values_keep_two_decimals() {
        assert_eq!(fmt_fine_us(0.356), "0.36 µs");
        assert_eq!(fmt_fine_us(-2.5), "−2.50 µs");
        assert_eq!(fmt_fine_us(25.4), "25 µs");
        assert_eq!(fmt_us(0.356), "0 µs");
        assert_eq!(fmt_us(12_345.0), "12 ms");
    }
}
