//! Analysis: the questions asked of the engines and the model. The fifth layer (above
//! `engine`, below `report`); every sweep it needs goes through `engine::sweep::driver`.
//!
//! - [`plan`]: size the cluster under a budget, a power envelope and a deadline.
//! - [`validate`]: the runs-file format, and the model held against measured runs.
//! - [`fit`]: the efficiency families fitted to measured runs, and leave-one-group-out
//!   cross-validation.
//! - [`uncertainty`]: intervals from the model's held-out error, and the ranges of the
//!   catalog's uncertain assumptions.
//! - [`draws`]: layouts and plans re-priced under drawn assumptions (`--uncertainty`) and at
//!   each end of each range (`plan --sensitivity`).

pub mod draws;
pub mod fit;
pub mod plan;
pub mod uncertainty;
pub mod validate;
