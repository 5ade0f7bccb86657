//! The matrix view of a contiguous weight, as the kernels index it.

/// The matrix view `[rows, outer · inner]` of a contiguous weight `[outer, rows, inner]`:
/// `M[j, (o, r)] = W[o, j, r]`, with `outer` the product of the axes before `dim` and `inner`
/// of those after. `dim = 0` gives `outer = 1` (`M` is the stored matrix); a Linear weight
/// `[in, out]` with `dim = 1` gives `inner = 1` (`M` is the stored matrix transposed). No
/// transposed or permuted copy is ever made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub outer: usize,
    pub rows: usize,
    pub inner: usize,
}

impl View {
    /// The view of a weight of shape `dims` with `dim` as the matrix rows.
    pub fn new(dims: &[usize], dim: usize) -> Self {
        Self {
            outer: dims[..dim].iter().product(),
            rows: dims[dim],
            inner: dims[dim + 1..].iter().product(),
        }
    }

    /// Length of `v` (matrix columns).
    pub fn cols(&self) -> usize {
        self.outer * self.inner
    }

    /// Elements per block `W[o]`: `[rows, inner]`.
    pub fn block(&self) -> usize {
        self.rows * self.inner
    }
}
