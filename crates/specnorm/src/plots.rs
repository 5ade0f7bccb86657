//! The demo's PNG plots, drawn with plotters and the embedded DejaVu Sans font.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::gan::{DISCRIMINATOR_LAYERS, History};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
pub const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One labelled line of a chart.
struct Series {
    label: String,
    color: usize,
    points: Vec<(f32, f32)>,
}

/// Makes the embedded font the one plotters draws "sans-serif" text with.
pub fn register_font() -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font could not be loaded"))
}

/// A plotters error as an anyhow error.
pub fn err<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow!("plotting failed: {error:?}")
}

/// Real points and each run's generated points, side by side.
pub fn samples(path: &Path, real: &[f32], runs: &[(&str, &History)]) -> Result<()> {
    let root = BitMapBackend::new(path, (600 * runs.len() as u32, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for (area, (title, history)) in root.split_evenly((1, runs.len())).iter().zip(runs) {
        let mut chart = ChartBuilder::on(area)
            .caption(*title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(36)
            .build_cartesian_2d(-3.0f32..3.0, -3.0f32..3.3)
            .map_err(err)?;
        chart.configure_mesh().disable_mesh().draw().map_err(err)?;
        let points = |data: &[f32], color: RGBColor| {
            data.chunks_exact(2)
                .map(move |p| Circle::new((p[0], p[1]), 2, color.mix(0.5).filled()))
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(points(real, RGBColor(150, 150, 150)))
            .map_err(err)?
            .label("real")
            .legend(|(x, y)| Circle::new((x, y), 4, RGBColor(150, 150, 150).filled()));
        chart
            .draw_series(points(&history.samples, COLORS[0]))
            .map_err(err)?
            .label("generated")
            .legend(|(x, y)| Circle::new((x, y), 4, COLORS[0].filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    present(&root, path)
}

/// One line per (run, layer) of a σ series against generator steps.
pub fn sigma(
    path: &Path,
    title: &str,
    runs: &[(&str, &History)],
    pick: impl Fn((f32, f32)) -> f32,
) -> Result<()> {
    let series: Vec<Series> = runs
        .iter()
        .enumerate()
        .flat_map(|(r, (run, history))| {
            let pick = &pick;
            DISCRIMINATOR_LAYERS
                .iter()
                .enumerate()
                .map(move |(l, layer)| {
                    let points = history
                        .record_steps
                        .iter()
                        .zip(&history.sigmas)
                        .map(|(&step, sigmas)| (step as f32, pick(sigmas[l])))
                        .collect();
                    Series {
                        label: format!("{run}: {layer}"),
                        color: r * 3 + l,
                        points,
                    }
                })
        })
        .collect();
    let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let top = values().fold(f32::MIN, f32::max);
    let bottom = values().fold(f32::MAX, f32::min);
    let pad = ((top - bottom) * 0.1).max(0.02);
    let last = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f32::max);
    lines(
        path,
        title,
        "σ",
        &series,
        (0.0, last),
        ((bottom - pad).max(0.0), top + pad),
    )
}

/// Discriminator and generator losses of each run.
pub fn losses(path: &Path, runs: &[(&str, &History)]) -> Result<()> {
    let smooth = |values: &[f32]| -> Vec<(f32, f32)> {
        let window = (values.len() / 100).max(1);
        values
            .chunks(window)
            .enumerate()
            .map(|(i, c)| {
                (
                    ((i + 1) * window) as f32,
                    c.iter().sum::<f32>() / c.len() as f32,
                )
            })
            .collect()
    };
    let series: Vec<Series> = runs
        .iter()
        .enumerate()
        .flat_map(|(r, (run, history))| {
            [
                Series {
                    label: format!("{run}: D loss"),
                    color: r * 3,
                    points: smooth(&history.d_loss),
                },
                Series {
                    label: format!("{run}: G loss"),
                    color: r * 3 + 1,
                    points: smooth(&history.g_loss),
                },
            ]
        })
        .collect();
    let finite = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let top = finite.fold(1.0f32, f32::max).min(20.0) * 1.05;
    let last = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f32::max);
    lines(
        path,
        "Losses (smoothed)",
        "loss",
        &series,
        (0.0, last),
        (0.0, top),
    )
}

fn lines(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[Series],
    x: (f32, f32),
    y: (f32, f32),
) -> Result<()> {
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("generator step")
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    for line in series {
        let style = ShapeStyle::from(&COLORS[line.color % COLORS.len()]).stroke_width(2);
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), style))
            .map_err(err)?
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
    present(&root, path)
}

/// The series labels, boxed on a translucent white background.
pub fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// Writes the PNG, naming it in any error.
pub fn present(root: &DrawingArea<BitMapBackend<'_>, Shift>, path: &Path) -> Result<()> {
    root.present()
        .map_err(err)
        .with_context(|| path.display().to_string())
}
