//! The comparison table: ours against PyTorch, Paddle and the memory floor, per row.

use std::fmt::Write;

use crate::peers::{self, Record};
use crate::timing::{Paired, Stats};

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
    /// Training step, paired with the plain layer (not measured by `--alone-only`).
    pub step: Option<Paired>,
    /// The spectral-norm computation alone, eval mode (first `n` only).
    pub sn_eval: Option<Stats>,
    /// Eval forward, paired with the plain layer (first `n` only).
    pub eval: Option<Paired>,
    /// The spectral-norm computation alone, training mode, with σ estimated as the
    /// convolution's operator norm (convolutions; runs before 2026-12-07: not measured).
    #[serde(default)]
    pub operator: Option<Stats>,
    /// Floor in µs: `n + 1` reads of the weight and one write of `W / σ` at the bandwidths
    /// measured at the weight's size (runs before 2026-12-03: `n + 1` reads at DRAM's rate).
    pub floor_us: f64,
    /// Bytes from the last 64-byte boundary to the plain layer's weight (ours: 0).
    #[serde(default)]
    pub plain_weight_offset: usize,
}

fn one_use() -> usize {
    1
}

/// The thread counts of `rows`, in the order they first appear.
pub fn threads_of(rows: &[Row]) -> Vec<usize> {
    distinct(rows.iter().map(|row| row.threads))
}

/// `items` without repeats, in the order they first appear.
fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
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

/// One of PyTorch's spectral norms (`torch_hook`: `torch.nn.utils.spectral_norm`,
/// `torch_param`: the parametrization), computation alone in training mode (peers.py's
/// `hook_train`, the same work as ours: power iteration, σ, `W / σ`, graph recorded).
fn torch_alone_of(records: &[Record], row: &Row, peer: &str) -> Option<f64> {
    peers::median(
        records,
        peer,
        row.threads,
        &row.shape,
        "hook_train",
        Some(row.n),
    )
}

/// The faster of PyTorch's two spectral norms, computation alone in training mode.
pub(crate) fn torch_alone(records: &[Record], row: &Row) -> Option<f64> {
    ["torch_hook", "torch_param"]
        .iter()
        .filter_map(|peer| torch_alone_of(records, row, peer))
        .reduce(f64::min)
}

/// Paddle's spectral-norm computation alone in training mode.
fn paddle_alone(records: &[Record], row: &Row) -> Option<f64> {
    peers::median(
        records,
        "paddle",
        row.threads,
        &row.shape,
        "hook_train",
        Some(row.n),
    )
}

/// The time a row's SN alone is held to: the larger of 0.25× PyTorch's and 1.2× the floor
/// (where the floor itself is above 0.25× PyTorch's, no code could meet the ratio).
pub(crate) fn target_us(records: &[Record], row: &Row) -> Option<f64> {
    torch_alone(records, row).map(|torch| (0.25 * torch).max(1.2 * row.floor_us))
}

/// A paired overhead as a cell: its median, marked where it is negative or its 95% interval
/// holds 0 (not a measurable cost, and never a met target).
fn fmt_overhead(paired: &crate::timing::Paired, fmt: impl Fn(f64) -> String) -> String {
    let overhead = paired.overhead;
    match overhead.excludes_zero() {
        Some(false) => format!("{} (noise)", fmt(overhead.median_us)),
        _ if overhead.median_us < 0.0 => format!("{} (negative)", fmt(overhead.median_us)),
        _ => fmt(overhead.median_us),
    }
}

/// PyTorch's smaller training-step overhead of its two spectral norms in one peers.py run:
/// `run` is `""` for the run with glibc's default malloc, [`peers::TUNED`] for the malloc-tuned
/// one.
fn torch_step_in(records: &[Record], row: &Row, run: &str) -> Option<f64> {
    ["torch_hook", "torch_param"]
        .iter()
        .filter_map(|peer| {
            let peer = format!("{peer}{run}");
            peers::median(
                records,
                &peer,
                row.threads,
                &row.shape,
                "step_ovh",
                Some(row.n),
            )
        })
        .reduce(f64::min)
}

/// PyTorch's smallest training-step overhead: of its two spectral norms, with either malloc
/// setting. We compare against the stronger peer.
pub(crate) fn torch_step(records: &[Record], row: &Row) -> Option<f64> {
    [
        torch_step_in(records, row, ""),
        torch_step_in(records, row, peers::TUNED),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::min)
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

/// The tables: SN alone against PyTorch's and Paddle's SN alone, the floor and the target (the
/// headline), then the training-step and eval-forward overheads.
pub fn render(rows: &[Row], records: &[Record]) -> String {
    let mut out = String::new();
    for threads in threads_of(rows) {
        let these: Vec<&Row> = rows.iter().filter(|r| r.threads == threads).collect();
        let _ = writeln!(out, "\n## {threads} thread(s)\n");
        if let Some(row) = these.iter().find(|row| row.uses != 1) {
            let _ = writeln!(
                out,
                "Training steps make {} forwards before their one backward.\n",
                row.uses
            );
        }
        out.push_str("| shape | n | ours: SN alone | PyTorch hook | PyTorch parametrization | ours/PyTorch | Paddle: SN alone | ours/Paddle | floor | ×floor | target | ×target |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for row in &these {
            let ours = row.sn_train.median_us;
            let (torch, paddle) = (torch_alone(records, row), paddle_alone(records, row));
            let target = target_us(records, row);
            let ratio3 = |r: Option<f64>| fmt_opt(r, |r| format!("{r:.3}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} |",
                row.shape,
                row.n,
                fmt_us(ours),
                fmt_opt(torch_alone_of(records, row, "torch_hook"), fmt_us),
                fmt_opt(torch_alone_of(records, row, "torch_param"), fmt_us),
                ratio3(ratio(ours, torch)),
                fmt_opt(paddle, fmt_us),
                ratio3(ratio(ours, paddle)),
                fmt_us(row.floor_us),
                ours / row.floor_us,
                fmt_opt(target, fmt_us),
                ratio3(ratio(ours, target)),
            );
        }
        let stepped: Vec<(&Row, &Paired)> = these
            .iter()
            .filter_map(|row| Some((*row, row.step.as_ref()?)))
            .collect();
        if !stepped.is_empty() {
            out.push_str("\n| shape | n | ours: step +ovh | PyTorch +ovh | PyTorch +ovh, malloc-tuned | Paddle +ovh | ours/PyTorch | ours/Paddle |\n");
            out.push_str("|---|---|---|---|---|---|---|---|\n");
        }
        for &(row, step) in &stepped {
            let ovh = step.overhead.median_us;
            let torch = torch_step(records, row);
            let torch_default = torch_step_in(records, row, "");
            let torch_tuned = torch_step_in(records, row, peers::TUNED);
            let paddle = peers::median(
                records,
                "paddle",
                threads,
                &row.shape,
                "step_ovh",
                Some(row.n),
            );
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                row.shape,
                row.n,
                fmt_overhead(step, fmt_us),
                fmt_opt(torch_default, fmt_us),
                fmt_opt(torch_tuned, fmt_us),
                fmt_opt(paddle, fmt_us),
                fmt_opt(ratio(ovh, torch), |r| format!("{r:.3}")),
                fmt_opt(ratio(ovh, paddle), |r| format!("{r:.3}")),
            );
        }
        if !stepped.is_empty() {
            out.push_str(&offsets_line(&these));
        }
        let evaluated: Vec<(&Row, Paired)> = these
            .iter()
            .filter_map(|row| Some((*row, row.eval?)))
            .collect();
        if !evaluated.is_empty() {
            out.push_str("\n| shape | ours: SN alone (eval) | PyTorch: SN alone (eval) | ours/PyTorch | ours: eval fwd +ovh | PyTorch eval fwd +ovh | ours/PyTorch |\n");
            out.push_str("|---|---|---|---|---|---|---|\n");
        }
        for (row, eval) in evaluated {
            let ovh = eval.overhead.median_us;
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
                fmt_overhead(&eval, fmt_fine_us),
                fmt_opt(torch, fmt_us),
                fmt_opt(ratio(ovh, torch), |r| format!("{r:.3}")),
            );
        }
        out.push_str(&step_cost_table(&these));
        out.push_str(&operator_table(&these, records));
    }
    out
}

/// What one more power-iteration step costs, per shape measured at two `n`: the difference of
/// the SN-alone medians at its smallest and largest `n`, per step, beside the floor's price of
/// a step (one read of W at W's size). On the fast path a step is one fused sweep `Mᵀ(M v)`,
/// which loads every element twice; this shows what that costs against a read.
fn step_cost_table(rows: &[&Row]) -> String {
    let shapes = distinct(rows.iter().map(|row| row.shape.as_str()));
    let lines: Vec<String> = shapes
        .into_iter()
        .filter_map(|shape| {
            let of_shape = || rows.iter().filter(|r| r.shape == shape && r.uses == 1);
            let lo = of_shape().min_by_key(|r| r.n)?;
            let hi = of_shape().max_by_key(|r| r.n)?;
            (hi.n > lo.n).then(|| step_cost_line(lo, hi))
        })
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\nOne more power-iteration step: (SN alone at the largest n − at the smallest n) / \
         steps, with the range the two medians' 95% intervals allow; the floor prices a step as \
         one read of W at its size.\n\n\
         | shape | n | ours per step | range | one read of W | ×read |\n\
         |---|---|---|---|---|---|\n{}",
        lines.concat()
    )
}

/// One shape's row of [`step_cost_table`], from its rows at a smaller and a larger `n`.
fn step_cost_line(lo: &Row, hi: &Row) -> String {
    let steps = (hi.n - lo.n) as f64;
    let ours = (hi.sn_train.median_us - lo.sn_train.median_us) / steps;
    let read = (hi.floor_us - lo.floor_us) / steps;
    // The widest the difference can be with each median inside its own 95% interval.
    let range = match (hi.sn_train.ci95_us, lo.sn_train.ci95_us) {
        (Some([hi_low, hi_high]), Some([lo_low, lo_high])) => {
            Some([(hi_low - lo_high) / steps, (hi_high - lo_low) / steps])
        }
        _ => None,
    };
    let costs_time = ours > 0.0 && range.is_none_or(|[low, _]| low > 0.0);
    format!(
        "| {} | {} → {} | {}{} | {} | {} | {} |\n",
        hi.shape,
        lo.n,
        hi.n,
        fmt_fine_us(ours),
        if costs_time { "" } else { " (noise)" },
        range.map_or_else(
            || "–".to_string(),
            |[low, high]| format!("{} – {}", fmt_fine_us(low), fmt_fine_us(high)),
        ),
        fmt_fine_us(read),
        fmt_opt(ratio(ours, Some(read)).filter(|_| costs_time), |r| {
            format!("{r:.2}")
        }),
    )
}

/// The operator mode (σ as the convolution's operator norm on the benchmark's input size)
/// against the matrix view of the same weight, ours and PyTorch's: SN alone, training mode.
fn operator_table(rows: &[&Row], records: &[Record]) -> String {
    let mut out = String::new();
    for (row, operator) in rows.iter().filter_map(|row| Some((row, row.operator?))) {
        if out.is_empty() {
            out.push_str("\n| shape | n | ours, operator mode: SN alone | ours, matrix view | ×matrix view | PyTorch (matrix view) | ×PyTorch |\n");
            out.push_str("|---|---|---|---|---|---|---|\n");
        }
        let (ours, matrix) = (operator.median_us, row.sn_train.median_us);
        let torch = torch_alone(records, row);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {} | {} |",
            row.shape,
            row.n,
            fmt_us(ours),
            fmt_us(matrix),
            ours / matrix,
            fmt_opt(torch, fmt_us),
            fmt_opt(ratio(ours, torch), |r| format!("{r:.1}")),
        );
    }
    out
}

/// Where the plain layers' weights started, per row. From 2026-12-07 the plain layer's weight
/// is in the same kind of storage as our `W / σ` (on a cache line, huge pages asked for from
/// 2 MiB); earlier runs compared against Burn's own allocation (16-byte aligned, mostly 16 B
/// past a line), on which the Flex matmul is slower, so part of their overheads was layout.
fn offsets_line(rows: &[&Row]) -> String {
    let each: Vec<String> = rows
        .iter()
        .map(|r| format!("{} n={} {} B", r.shape, r.n, r.plain_weight_offset))
        .collect();
    format!(
        "\nPlain layers' weights, bytes past a 64-byte line (ours start on one): {}.\n",
        each.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::{Row, fmt_fine_us, fmt_us, render, target_us, torch_step};
    use crate::peers;
    use crate::peers::Record;

    fn row_json(uses: Option<usize>, overhead: &str) -> String {
        let stats = r#"{"median_us": 10.0, "min_us": 9.0, "reps": 31}"#;
        let uses = uses.map_or(String::new(), |u| format!(r#""uses": {u},"#));
        format!(
            r#"{{"threads": 1, "shape": "lin256", "numel": 65536, "n": 1, {uses}
                "sn_train": {stats},
                "step": {{"sn": {stats}, "plain": {stats}, "overhead": {overhead}}},
                "sn_eval": null, "eval": null, "floor_us": 5.0}}"#
        )
    }

    fn row(uses: Option<usize>) -> Row {
        serde_json::from_str(&row_json(
            uses,
            r#"{"median_us": 10.0, "min_us": 9.0, "reps": 31}"#,
        ))
        .unwrap()
    }

    fn alone(peer: &str, median: f64) -> Record {
        Record {
            peer: peer.into(),
            framework: if peer == "paddle" { "paddle" } else { "torch" }.into(),
            threads: 1,
            shape: "lin256".into(),
            n_power_iterations: Some(1),
            measure: "hook_train".into(),
            median_us: median,
        }
    }

    #[test]
    fn steps_of_several_uses_are_labelled_and_older_results_read_as_one_use() {
        let old = row(None);
        assert_eq!(old.uses, 1);
        let table = render(&[old], &[]);
        assert!(!table.contains("forwards before"), "{table}");
        let table = render(&[row(Some(2))], &[]);
        assert!(
            table.contains("Training steps make 2 forwards before their one backward."),
            "{table}"
        );
    }

    /// The headline is SN alone against the faster PyTorch spectral norm's SN alone; the
    /// target is 0.25× that or 1.2× the floor, whichever is longer.
    #[test]
    fn sn_alone_is_held_to_the_faster_pytorch_peer_or_the_floor() {
        let records = [
            alone("torch_hook", 80.0),
            alone("torch_param", 40.0),
            alone("paddle", 400.0),
        ];
        let row = row(None);
        // 0.25 × 40 = 10 µs against 1.2 × 5 = 6 µs: the ratio's.
        assert_eq!(target_us(&records, &row), Some(10.0));
        let mut slow_floor = row.clone();
        slow_floor.floor_us = 20.0;
        assert_eq!(target_us(&records, &slow_floor), Some(24.0));
        assert_eq!(target_us(&[], &row), None);
        let table = render(&[row], &records);
        assert!(
            table.contains("| lin256 | 1 | 10 µs | 80 µs | 40 µs | 0.250 | 400 µs | 0.025 | 5 µs | 2.00 | 10 µs | 1.000 |"),
            "{table}"
        );
    }

    /// An `--alone-only` run has SN alone and nothing else: its rows read back, the headline
    /// is rendered, and no step or eval table (nor the plain layers' layout) appears.
    #[test]
    fn rows_measuring_sn_alone_only_render_the_headline_alone() {
        let mut json: serde_json::Value = serde_json::from_str(&row_json(None, "null")).unwrap();
        json["step"] = serde_json::Value::Null;
        let only: Row = serde_json::from_value(json).unwrap();
        assert!(only.step.is_none());
        let table = render(&[only], &[alone("torch_hook", 40.0)]);
        assert!(table.contains("| lin256 | 1 | 10 µs | 40 µs |"), "{table}");
        for absent in ["step +ovh", "eval fwd", "bytes past a 64-byte line"] {
            assert!(!table.contains(absent), "{absent}: {table}");
        }
    }

    /// A shape measured at two `n` gets its per-step cost: the difference of our medians per
    /// step, with the range their intervals allow, against the floor's difference (one read).
    #[test]
    fn one_more_step_is_priced_from_the_two_n_rows() {
        let mut lo = row(None);
        lo.sn_train.ci95_us = Some([9.0, 11.0]);
        let mut hi = lo.clone();
        hi.n = 5;
        hi.sn_train.median_us = 50.0;
        hi.sn_train.ci95_us = Some([47.0, 55.0]);
        hi.floor_us = 13.0;
        let table = render(&[lo.clone(), hi.clone()], &[]);
        // (50 − 10) / 4 = 10 µs within [(47 − 11) / 4, (55 − 9) / 4]; (13 − 5) / 4 = 2 µs.
        assert!(
            table.contains("| lin256 | 1 → 5 | 10 µs | 9.00 µs – 12 µs | 2.00 µs | 5.00 |"),
            "{table}"
        );
        // A difference whose range holds 0 is noise, not a step's price.
        let mut overlapping = hi.clone();
        overlapping.sn_train.ci95_us = Some([10.5, 55.0]);
        let table = render(&[lo.clone(), overlapping], &[]);
        assert!(
            table.contains("| 10 µs (noise) | −0.12 µs – 12 µs | 2.00 µs | – |"),
            "{table}"
        );
        // So is a negative one, intervals recorded or not.
        let mut flat = hi;
        flat.sn_train.median_us = 9.0;
        flat.sn_train.ci95_us = None;
        let table = render(&[lo.clone(), flat], &[]);
        assert!(
            table.contains("| −0.25 µs (noise) | – | 2.00 µs | – |"),
            "{table}"
        );
        // One n only: nothing to difference.
        assert!(!render(&[lo], &[]).contains("per step"));
    }

    fn step_record(peer: &str, median: f64) -> Record {
        Record {
            measure: "step_ovh".into(),
            median_us: median,
            ..alone(peer, 0.0)
        }
    }

    /// PyTorch's step overhead is shown with glibc's default malloc and malloc-tuned; ours is
    /// held to the smallest of the four (two spectral norms, two malloc settings).
    #[test]
    fn the_step_overhead_is_shown_against_both_malloc_settings_and_judged_by_the_smaller() {
        let tuned = |peer: &str| format!("{peer}{}", peers::TUNED);
        let records = [
            step_record("torch_hook", 100.0),
            step_record("torch_param", 120.0),
            step_record(&tuned("torch_hook"), 60.0),
            step_record(&tuned("torch_param"), 50.0),
        ];
        let row = row(None);
        assert_eq!(torch_step(&records, &row), Some(50.0));
        assert_eq!(torch_step(&records[..2], &row), Some(100.0));
        let table = render(&[row], &records);
        assert!(
            table.contains("| lin256 | 1 | 10 µs | 100 µs | 50 µs | – | 0.200 | – |"),
            "{table}"
        );
    }

    /// The operator mode's table appears for rows that measured it, against the same row's
    /// matrix view and PyTorch's SN alone.
    #[test]
    fn the_operator_mode_is_shown_beside_the_matrix_view() {
        let mut with = row(None);
        assert!(!render(&[with.clone()], &[]).contains("operator mode"));
        with.operator = Some(
            serde_json::from_str(r#"{"median_us": 250.0, "min_us": 240.0, "reps": 31}"#).unwrap(),
        );
        let table = render(&[with], &[alone("torch_hook", 50.0)]);
        assert!(
            table.contains("| lin256 | 1 | 250 µs | 10 µs | 25.0 | 50 µs | 5.0 |"),
            "{table}"
        );
    }

    #[test]
    fn negative_and_within_noise_overheads_are_labelled_so() {
        let noise = r#"{"median_us": 3.0, "min_us": -9.0, "reps": 31, "ci95_us": [-2.0, 8.0]}"#;
        let negative =
            r#"{"median_us": -30.0, "min_us": -40.0, "reps": 31, "ci95_us": [-35.0, -25.0]}"#;
        let clear = r#"{"median_us": 30.0, "min_us": 20.0, "reps": 31, "ci95_us": [25.0, 35.0]}"#;
        for (stats, cell) in [
            (noise, "| 3 µs (noise) |"),
            (negative, "| −30 µs (negative) |"),
            (clear, "| 30 µs |"),
        ] {
            let row: Row = serde_json::from_str(&row_json(None, stats)).unwrap();
            let table = render(&[row], &[]);
            assert!(table.contains(cell), "{cell}: {table}");
        }
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
