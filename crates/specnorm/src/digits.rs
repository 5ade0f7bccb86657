//! The 8×8 handwritten digits (UCI; the copy scikit-learn ships), embedded in the binary.
//! Provenance and licence: `data/README.md`.

use std::io::Read;

use anyhow::{Context, Result, bail, ensure};
use flate2::read::GzDecoder;
use rand::Rng;
use rand::seq::SliceRandom;

const DIGITS_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");
/// Pixels per image (8 × 8).
pub const PIXELS: usize = 64;
/// Classes (the digits 0..9).
pub const CLASSES: usize = 10;
/// The largest pixel value (each pixel counts the on bits of a 4 × 4 block of a 32 × 32 bitmap).
const PIXEL_MAX: f32 = 16.0;

/// Images scaled to [-1, 1] (the generator's tanh range) and their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Digits {
    /// Flattened `[len, 64]`, row by row.
    pub images: Vec<f32>,
    /// One label (0..9) per image.
    pub labels: Vec<u8>,
}

impl Digits {
    /// The 1,797 embedded images.
    pub fn embedded() -> Result<Self> {
        let mut text = String::new();
        GzDecoder::new(DIGITS_GZ)
            .read_to_string(&mut text)
            .context("decoding the embedded digits.csv.gz")?;
        parse(&text)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Image `index`, 64 pixels.
    pub fn image(&self, index: usize) -> &[f32] {
        &self.images[index * PIXELS..(index + 1) * PIXELS]
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            images: indices
                .iter()
                .flat_map(|&i| self.image(i))
                .copied()
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// A random split into two parts, the first holding `first` images.
    pub fn split(&self, first: usize, rng: &mut impl Rng) -> (Self, Self) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(rng);
        let (a, b) = order.split_at(first.min(order.len()));
        (self.subset(a), self.subset(b))
    }
}

fn parse(text: &str) -> Result<Digits> {
    let mut digits = Digits {
        images: Vec::new(),
        labels: Vec::new(),
    };
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        ensure!(
            fields.len() == PIXELS + 1,
            "digits line {}: {} fields, expected {}",
            number + 1,
            fields.len(),
            PIXELS + 1
        );
        for field in &fields[..PIXELS] {
            let pixel: f32 = field.trim().parse().context("a digits pixel")?;
            if !(0.0..=PIXEL_MAX).contains(&pixel) {
                bail!("digits line {}: pixel {pixel} outside 0..16", number + 1);
            }
            digits.images.push(pixel / PIXEL_MAX * 2.0 - 1.0);
        }
        let label: u8 = fields[PIXELS].trim().parse().context("a digits label")?;
        ensure!(usize::from(label) < CLASSES, "digits label {label}");
        digits.labels.push(label);
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_embedded_set_is_sklearns_digits() {
        let digits = Digits::embedded().unwrap();
        assert_eq!(digits.len(), 1797);
        assert_eq!(digits.images.len(), 1797 * 64);
        // Images per class, counted from the file with awk, and as scikit-learn documents.
        let mut per_class = [0usize; CLASSES];
        digits
            .labels
            .iter()
            .for_each(|&l| per_class[usize::from(l)] += 1);
        assert_eq!(
            per_class,
            [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        // The first image's first row is 0,0,5,13,9,1,0,0.
        let row: Vec<f32> = [0., 0., 5., 13., 9., 1., 0., 0.]
            .iter()
            .map(|p| p / 8.0 - 1.0)
            .collect();
        assert_eq!(&digits.image(0)[..8], &row[..]);
        assert!(digits.images.iter().all(|p| (-1.0..=1.0).contains(p)));
    }

    #[test]
    fn a_split_partitions_the_images() {
        let digits = Digits::embedded().unwrap();
        let (a, b) = digits.split(1200, &mut rand::rngs::StdRng::seed_from_u64(3));
        assert_eq!((a.len(), b.len()), (1200, 597));
        let mut labels = [a.labels.clone(), b.labels.clone()].concat();
        let mut all = digits.labels.clone();
        labels.sort_unstable();
        all.sort_unstable();
        assert_eq!(labels, all);
        assert_ne!(a.labels[..50], digits.labels[..50], "shuffled");
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(parse("1,2,3\n").is_err());
        let mut line = vec!["0"; 64];
        line.push("10");
        assert!(parse(&line.join(",")).is_err(), "label 10");
        line[64] = "3";
        line[0] = "17";
        assert!(parse(&line.join(",")).is_err(), "pixel 17");
        line[0] = "16";
        assert_eq!(parse(&line.join(",")).unwrap().image(0)[0], 1.0);
    }
}
