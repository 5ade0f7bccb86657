//! The digits sweep's PNGs: a grid of generated images per run, and the Fréchet distance per
//! setting with and without spectral normalization.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use crate::digits::PIXELS;
use crate::plots::{COLORS, err, legend, present};

/// Screen pixels per image pixel.
const SCALE: i32 = 5;
/// Images per side of a grid.
const SIDE: usize = 10;

/// The first 100 images of flattened `[n, 64]` pixels in [-1, 1], as a 10 × 10 grid.
pub fn grid(path: &Path, title: &str, images: &[f32]) -> Result<()> {
    let cell = 8 * SCALE + 4;
    let size = (SIDE as i32 * cell + 8) as u32;
    let root = BitMapBackend::new(path, (size, size + 30)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 18)).map_err(err)?;
    for (index, image) in images.chunks_exact(PIXELS).take(SIDE * SIDE).enumerate() {
        let (left, top) = (
            4 + (index % SIDE) as i32 * cell,
            4 + (index / SIDE) as i32 * cell,
        );
        for (p, &value) in image.iter().enumerate() {
            // Ink is dark, as the digits are drawn: -1 (no ink) white, 1 black.
            let shade = (255.0 * (1.0 - (value.clamp(-1.0, 1.0) + 1.0) / 2.0)) as u8;
            let (x, y) = (left + (p % 8) as i32 * SCALE, top + (p / 8) as i32 * SCALE);
            let colour = RGBColor(shade, shade, shade).filled();
            root.draw(&Rectangle::new([(x, y), (x + SCALE, y + SCALE)], colour))
                .map_err(err)?;
        }
    }
    present(&root, path)
}

/// Per setting (its letter, the distance with SN, without SN), the Fréchet distances on a log
/// scale, with the floor.
pub fn frechet_by_setting(path: &Path, settings: &[(char, f64, f64)], floor: f64) -> Result<()> {
    let names: Vec<char> = settings.iter().map(|s| s.0).collect();
    let values = || settings.iter().flat_map(|s| [s.1, s.2]).chain([floor]);
    // Headroom above the highest point for the legend, which sits at the top left.
    let top = values().fold(f64::MIN, f64::max).max(1e-3) * 6.0;
    let bottom = values().fold(f64::MAX, f64::min).max(1e-3) / 2.0;
    let root = BitMapBackend::new(path, (820, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Fréchet distance to real digits by Adam setting (lower is better)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..names.len() as f64 - 0.5, (bottom..top).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len())
        .x_label_formatter(&|x| {
            let index = x.round();
            match names.get(index as usize) {
                Some(name) if (x - index).abs() < 1e-6 && index >= 0.0 => name.to_string(),
                _ => String::new(),
            }
        })
        .x_desc("setting (Miyato et al. 2018, Table 1)")
        .y_desc("Fréchet distance")
        .draw()
        .map_err(err)?;
    for (color, spectral_norm, label) in [(0, true, "with SN"), (1, false, "without SN")] {
        let style = ShapeStyle::from(&COLORS[color]).stroke_width(2);
        let points: Vec<(f64, f64)> = settings
            .iter()
            .enumerate()
            .map(|(i, &(_, with, without))| {
                let value = if spectral_norm { with } else { without };
                (i as f64, value.max(bottom))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 5, style.filled())))
            .map_err(err)?;
    }
    let floor_style = ShapeStyle::from(&COLORS[2]).stroke_width(2);
    let span = [-0.5, names.len() as f64 - 0.5];
    chart
        .draw_series(LineSeries::new(span.map(|x| (x, floor)), floor_style))
        .map_err(err)?
        .label("two halves of the real data (floor)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], floor_style));
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    present(&root, path)
}
