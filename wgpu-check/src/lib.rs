//! No library code: the checks are in `tests/`.
