//! Report: what the commands print. The sixth layer (above `analysis`, below the command
//! line): typed report structs go in, text comes out.
//!
//! - [`export`]: one exporter trait with a table, a JSON and a CSV implementation, over one
//!   typed report per command.
//! - [`schema`]: the JSON Schema of each command's `--json`, generated from those types.
//! - [`plot`]: the SVG plots of a plan.
//! - [`emit`]: a priced layout as a framework's launch arguments.

pub mod emit;
pub mod export;
pub mod plot;
pub mod schema;
