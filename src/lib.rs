//! clustersweep: which accelerator, how many, on what network and with which parallel layout
//! trains a model fastest, cheapest or within a power envelope.
//!
//! The crate is a library with a thin binary, in layers that import only downward, each a
//! folder (or, for the leaves and the command line, a few files):
//!
//! 1. units: [`units`] (SI conversions, human number formats), [`error`] (errors with their exit
//!    codes), [`tomlfile`] (TOML sections read with messages that name the line and key).
//! 2. [`model`]: the analytical model of a training step in f64, the specification that the
//!    WGSL shaders in `shaders/` mirror function for function.
//! 3. [`input`]: the catalog and the scenario files, read and checked once.
//! 4. [`engine`]: the search space, the CPU and GPU engines, and the one driver over them.
//! 5. [`analysis`]: planning, validation, fitting and uncertainty, through the driver.
//! 6. [`report`]: typed reports printed as tables, JSON or CSV, their schemas, plots and
//!    launch arguments.
//! 7. the command line: [`cli`] records what the user typed, [`options`] resolves and
//!    cross-checks it, and [`app`] runs the commands.
//!
//! `tests/integration/layers.rs` fails on an import that goes up a layer, or a cycle.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod engine;
pub mod error;
pub mod input;
pub mod model;
pub mod options;
pub mod report;
pub mod tomlfile;
pub mod units;
