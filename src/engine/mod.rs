//! Engine: pricing many layouts fast. The fourth layer (above `input`, below `analysis`).
//!
//! - [`search`]: the search space of a sweep (axes resolved from `[search]`) and the mixed-radix
//!   numbering that decodes a 64-bit index into one layout, with its profile key.
//! - [`sweep`]: what a sweep returns and how partial results merge; the CPU engine
//!   ([`sweep::cpu`], the f64 model on every core) and the GPU engine ([`sweep::gpu`], the WGSL
//!   twins through wgpu); and the one driver ([`sweep::driver`]) that owns the backend choice,
//!   the fallback from GPU to CPU, the split over adapters and shards, and the top-k. Everything
//!   above this layer sweeps through the driver, never an engine.

pub mod search;
pub mod sweep;
