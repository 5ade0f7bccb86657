//! Spectral-norm benchmark harness: the layers and calls `peers.py` times, built on Burn, plus
//! timing, bandwidth, peer-result reading and the comparison report. Used by the `sn-bench`
//! binary and by the criterion benches.

pub mod bandwidth;
pub mod peers;
pub mod report;
pub mod targets;
pub mod timing;
pub mod workload;
