//! The one integration-test binary: the real `clustersweep` executable and the library's
//! public surface, end to end. Modules group the tests by command; regression tests are named
//! after what they reproduce. Tests that need a GPU adapter have `gpu_or_skip` in their path:
//! without an adapter they skip with a message, unless `REQUIRE_GPU=1` (CI), where they fail.

mod cli;
mod draws;
mod fuzz;
mod gpu_or_skip;
mod layers;
mod model_properties;
mod network;
mod plan;
mod schema;
mod shaders;
mod sweep;
mod validation;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The keys of a layout in `sweep --json` and `plan --json`.
pub const LAYOUT_KEYS: [&str; 17] = [
    "accelerator",
    "network",
    "stack",
    "count",
    "tp",
    "pp",
    "dp",
    "cp",
    "ep",
    "microbatch",
    "interleave",
    "recompute",
    "sequence_parallel",
    "zero",
    "recompute_layers",
    "offload_layers",
    "global_batch",
];

/// Run the built binary with `args`.
pub fn clustersweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clustersweep"))
        .args(args)
        .output()
        .expect("the clustersweep binary runs")
}

/// A file under tests/data.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Write `text` to a fresh file in a per-test temporary directory and return its path.
pub fn temp_file(test: &str, name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clustersweep-test-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
