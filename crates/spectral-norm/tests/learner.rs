//! Spectral normalization under burn-train's `SupervisedTraining` (the `learner` example's
//! code): the Learner's checkpoints carry u and v, and a run resumed from one continues exactly
//! where a straight run would be.

#[path = "../examples/learner.rs"]
mod learner;

use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use burn::train::checkpoint::{AsyncCheckpointer, FileCheckpointer, KeepLastNCheckpoints};
use burn::train::{Learner, LearningCheckpointer};
use learner::{Regressor, straight_and_resumed, train};

/// One training at a time: the device's random generator (seeded by `Regressor::new`) is one per
/// process, and two trainings at once interleave their autodiff node numbers, which reorders
/// gradient sums.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sn-learner-{name}-{}", std::process::id()))
}

#[test]
fn a_resumed_learner_continues_the_power_iteration_exactly() {
    let _alone = alone();
    let dir = scratch("resume");
    let (straight, resumed) = straight_and_resumed(&dir);
    assert_eq!(straight.vectors(), resumed.vectors());
    assert_eq!(straight.weights(), resumed.weights());
    // Training moved them: a fresh model's vectors are not these.
    let fresh = Regressor::new(&Device::flex().autodiff());
    assert_ne!(fresh.vectors(), straight.vectors());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_learners_checkpoint_holds_the_vectors_of_its_epoch() {
    let _alone = alone();
    let dir = scratch("checkpoint");
    let trained = train(&dir, 2, None, 1);
    let checkpoints = dir.join("checkpoint");
    let checkpointer = LearningCheckpointer::new(
        AsyncCheckpointer::new(FileCheckpointer::new(&checkpoints, "model")),
        AsyncCheckpointer::new(FileCheckpointer::new(&checkpoints, "optim")),
        AsyncCheckpointer::new(FileCheckpointer::new(&checkpoints, "scheduler")),
        Box::new(KeepLastNCheckpoints::new(2)),
    );
    let device = Device::flex().autodiff();
    let optimizer: ModuleOptimizer = AdamConfig::new().init();
    let fresh = Learner::new(Regressor::new(&device), optimizer, ConstantLr::new(1e-2));
    let before = fresh.model().vectors();
    let restored = checkpointer.load_checkpoint(fresh, 2).model();
    assert_eq!(restored.vectors(), trained.vectors());
    assert_ne!(restored.vectors(), before);
    let epoch_one = {
        let optimizer: ModuleOptimizer = AdamConfig::new().init();
        let fresh = Learner::new(Regressor::new(&device), optimizer, ConstantLr::new(1e-2));
        checkpointer.load_checkpoint(fresh, 1).model().vectors()
    };
    assert_ne!(
        epoch_one,
        trained.vectors(),
        "each epoch's checkpoint has its own u, v"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// burn-train's multi-device strategy hands every worker `model.fork(device)`: an independent
/// copy, whose u and v that worker's forward advances and which is then dropped; only the
/// gradients come back. So the main model's u and v never move (each step iterates from the
/// vectors drawn at attach) and its checkpoints hold those. Found out here with two copies of
/// the CPU device; on several GPUs it is the same code.
#[test]
fn under_the_multi_device_strategy_the_vectors_never_advance() {
    let _alone = alone();
    let dir = scratch("multi");
    let fresh = Regressor::new(&Device::flex().autodiff()).vectors();
    let multi = train(&dir, 2, None, 2);
    assert_eq!(multi.vectors(), fresh, "u, v stay as drawn");
    let weights_moved = multi.weights() != Regressor::new(&Device::flex().autodiff()).weights();
    assert!(weights_moved, "the weights did train");
    std::fs::remove_dir_all(dir).unwrap();
}
