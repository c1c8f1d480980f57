//! clustersweep: which accelerator, how many, on what network and with which parallel layout
//! trains a model fastest, cheapest or within a power envelope.
//!
//! The crate is a library with a thin binary. [`model`] is the analytical model of a training
//! step (the specification that the GPU shaders mirror); [`catalog`] holds the accelerators and
//! model presets as data; [`scenario`] reads and checks scenario files; [`validate`] and [`fit`]
//! hold the model against measured runs; [`export`] prints results; [`app`] runs the commands.

pub mod app;
pub mod catalog;
pub mod cli;
pub mod draws;
pub mod emit;
pub mod error;
pub mod export;
pub mod fit;
pub mod model;
pub mod plan;
pub mod plot;
pub mod scenario;
pub mod schema;
pub mod search;
pub mod sweep;
pub mod tomlfile;
pub mod uncertainty;
pub mod units;
pub mod validate;
