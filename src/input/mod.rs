//! Input: what the user and the project give the model, read and checked once. The third layer
//! (above `units` and `model`, below `engine`): it imports only those two.
//!
//! - [`catalog`]: the accelerators, efficiency families, software stacks, model presets and
//!   uncertain assumptions, kept as sourced TOML data and turned into the model's SI-unit
//!   hardware and economics.
//! - [`scenario`]: the scenario file as written (every section, `[search]` and `[constraints]`
//!   included) and its resolution, with every cross-check, into the scenario the model runs on
//!   (a Hugging Face `config.json` read as a model section, too).

pub mod catalog;
pub mod scenario;
