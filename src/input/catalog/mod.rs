//! The hardware catalog and the model presets, kept as data (TOML embedded at build time) so a
//! user can add or replace entries with a file of their own (`--catalog my-hw.toml`).
//!
//! This module owns reading, merging and checking catalog files, and turning an entry into the
//! model's SI-unit [`Hardware`] and [`Economics`]. It knows nothing of scenarios.

pub mod assumptions;
pub mod network;
pub mod stacks;

pub use assumptions::AssumptionSpec;
pub use network::{Network, NetworkParts, Topology};
pub use stacks::{StackSpec, DEFAULT_STACK};

use crate::error::Error;
use crate::model::run::{Economics, Pricing};
use crate::model::{Dtype, Efficiency, FfnKind, Hardware};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const BUILTIN_ACCELERATORS: &str = include_str!("../../../catalog/accelerators.toml");
const BUILTIN_MODELS: &str = include_str!("../../../catalog/models.toml");
const BUILTIN_STACKS: &str = include_str!("../../../catalog/stacks.toml");
const BUILTIN_ASSUMPTIONS: &str = include_str!("../../../catalog/assumptions.toml");

/// Host link of an accelerator entry that gives none: PCIe 4.0 x16, ~25 of its 32 GB/s as host
/// copies reach it.
pub const DEFAULT_HOST_LINK_GB_PER_S: f64 = 25.0;
/// Host memory per accelerator of an entry that gives none.
pub const DEFAULT_HOST_MEMORY_GB: f64 = 128.0;

/// Facility facts: what the building adds to the accelerators' power, and what power costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Facility {
    pub pue: f64,
    pub electricity_usd_per_mwh: f64,
    /// Accelerators under one full-bisection pod of the scale-out fabric.
    pub pod_size: f64,
    /// Oversubscription of the fabric above a pod.
    pub pod_oversubscription: f64,
    /// How the scale-out fabric is built (the network the catalog's prices include).
    #[serde(default)]
    pub topology: Topology,
    /// Latency a step across pods adds to the scale-out latency (more switch hops, longer fibre).
    pub cross_pod_latency_us: f64,
    /// Facility power one site can supply; 0 for a single site of any size.
    pub site_power_mw: f64,
    /// Inter-site bandwidth per accelerator is its NIC rate divided by this.
    pub site_oversubscription: f64,
    pub inter_site_latency_ms: f64,
    /// Checkpoint write bandwidth per accelerator.
    pub checkpoint_gb_per_s: f64,
    /// Time from an interruption to training again (detect, reschedule, reload).
    pub restart_minutes: f64,
    /// Unexpected interruptions per accelerator-hour, for accelerators without their own figure.
    pub failure_rate_per_hour: f64,
    /// Server cost per accelerator over the accelerator's price (host, chassis, switches).
    pub server_cost_factor: f64,
    /// Share of a cluster's capital cost that is its scale-out network.
    pub network_cost_share: f64,
    /// Building and power infrastructure per MW of IT load.
    pub facility_usd_per_mw: f64,
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

impl Facility {
    /// Why these facts cannot describe a facility, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let finite = [
            ("pue", self.pue, 1.0),
            ("pod_size", self.pod_size, 1.0),
            ("pod_oversubscription", self.pod_oversubscription, 1.0),
            ("site_oversubscription", self.site_oversubscription, 1.0),
            ("electricity_usd_per_mwh", self.electricity_usd_per_mwh, 0.0),
            ("cross_pod_latency_us", self.cross_pod_latency_us, 0.0),
            ("site_power_mw", self.site_power_mw, 0.0),
            ("inter_site_latency_ms", self.inter_site_latency_ms, 0.0),
            ("restart_minutes", self.restart_minutes, 0.0),
            ("failure_rate_per_hour", self.failure_rate_per_hour, 0.0),
            ("server_cost_factor", self.server_cost_factor, 0.0),
            ("network_cost_share", self.network_cost_share, 0.0),
            ("facility_usd_per_mw", self.facility_usd_per_mw, 0.0),
        ];
        for (key, v, least) in finite {
            if !(v.is_finite() && v >= least) {
                return Some(format!("{key} = {v}, expected a number of at least {least}"));
            }
        }
        if !(self.checkpoint_gb_per_s.is_finite() && self.checkpoint_gb_per_s > 0.0) {
            return Some(format!(
                "checkpoint_gb_per_s = {}, expected a positive number",
                self.checkpoint_gb_per_s
            ));
        }
        if self.network_cost_share >= 1.0 {
            return Some(format!(
                "network_cost_share = {}, expected a share below 1",
                self.network_cost_share
            ));
        }
        None
    }
}

/// `[facility]` in a user's catalog file: any field replaces the built-in one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FacilityFile {
    pue: Option<f64>,
    electricity_usd_per_mwh: Option<f64>,
    pod_size: Option<f64>,
    pod_oversubscription: Option<f64>,
    topology: Option<Topology>,
    cross_pod_latency_us: Option<f64>,
    site_power_mw: Option<f64>,
    site_oversubscription: Option<f64>,
    inter_site_latency_ms: Option<f64>,
    checkpoint_gb_per_s: Option<f64>,
    restart_minutes: Option<f64>,
    failure_rate_per_hour: Option<f64>,
    server_cost_factor: Option<f64>,
    network_cost_share: Option<f64>,
    facility_usd_per_mw: Option<f64>,
    #[serde(default)]
    sources: BTreeMap<String, String>,
}

macro_rules! merge_facility {
    ($into:expr, $from:expr, [$($field:ident),*]) => {$(
        if let Some(v) = $from.$field {
            $into.$field = v;
        }
    )*};
}

impl Facility {
    fn merge(&mut self, f: FacilityFile) {
        merge_facility!(
            self,
            f,
            [
                pue,
                electricity_usd_per_mwh,
                pod_size,
                pod_oversubscription,
                topology,
                cross_pod_latency_us,
                site_power_mw,
                site_oversubscription,
                inter_site_latency_ms,
                checkpoint_gb_per_s,
                restart_minutes,
                failure_rate_per_hour,
                server_cost_factor,
                network_cost_share,
                facility_usd_per_mw
            ]
        );
        self.sources.extend(f.sources);
    }

    /// Accelerators one site powers (infinite for a single site of any size).
    pub fn site_size(&self, power_all_in_w: f64) -> f64 {
        if self.site_power_mw > 0.0 {
            (self.site_power_mw * 1e6 / (power_all_in_w * self.pue))
                .floor()
                .max(1.0)
        } else {
            1e30
        }
    }

    /// Capital cost per accelerator: its price grossed up for its share of servers and of the
    /// network, plus the facility behind its power.
    pub fn capex_per_accelerator_usd(&self, price_usd: f64, power_all_in_w: f64) -> f64 {
        price_usd * self.server_cost_factor / (1.0 - self.network_cost_share)
            + self.facility_usd_per_mw * power_all_in_w / 1e6
    }
}

/// Achieved fractions of datasheet rates, fitted per family of accelerators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EfficiencyFamily {
    pub id: String,
    /// Take every value not given here from this family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemm_half_dim: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_precision_gemm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<f64>,
    /// FlashAttention-2 class kernels' fraction of peak (default: `attention`, for silicon with
    /// no faster kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_flash2: Option<f64>,
    /// FlashAttention-1 class kernels' fraction of peak (default: `attention_flash2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_flash1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_overhead_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_overhead_ms: Option<f64>,
    /// Host time to issue one kernel eagerly (framework dispatch and the driver's launch), and
    /// inside a captured CUDA graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_overhead_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_launch_overhead_us: Option<f64>,
    /// Relative spread of one rank's step time: a synchronous step waits for the slowest of N
    /// ranks, `sync_jitter * sqrt(2 ln N)` of its compute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_jitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reserve_gb: Option<f64>,
    /// The keys `clustersweep fit` adjusts (default: all its rows can inform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<Vec<String>>,
    /// Values from microbenchmarks that the fit is pulled towards (see `fit::PRIOR_WEIGHT_PCT`),
    /// so that a parameter the rows barely inform stays where the benchmarks put it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prior: BTreeMap<String, f64>,
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

impl EfficiencyFamily {
    /// Set every value of the family from resolved ones (it no longer inherits any).
    pub fn set_values(&mut self, e: &FittedEfficiency) {
        self.gemm = Some(e.gemm);
        self.gemm_half_dim = Some(e.gemm_half_dim);
        self.low_precision_gemm = Some(e.low_precision_gemm);
        self.attention = Some(e.attention);
        self.attention_flash2 = Some(e.attention_flash2);
        self.attention_flash1 = Some(e.attention_flash1);
        self.layer_overhead_us = Some(e.layer_overhead_us);
        self.step_overhead_ms = Some(e.step_overhead_ms);
        self.launch_overhead_us = Some(e.launch_overhead_us);
        self.graph_launch_overhead_us = Some(e.graph_launch_overhead_us);
        self.sync_jitter = Some(e.sync_jitter);
        self.memory_reserve_gb = Some(e.memory_reserve_gb);
    }
}

/// The fitted efficiencies a fit may adjust and a catalog's `fitted` table may set, by key.
pub const FITTABLE: [&str; 9] = [
    "gemm",
    "gemm_half_dim",
    "attention",
    "attention_flash2",
    "attention_flash1",
    "low_precision_gemm",
    "layer_overhead_us",
    "step_overhead_ms",
    "sync_jitter",
];

/// The fitted values of a family once `like` chains are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FittedEfficiency {
    pub gemm: f64,
    pub gemm_half_dim: f64,
    pub low_precision_gemm: f64,
    pub attention: f64,
    pub attention_flash2: f64,
    pub attention_flash1: f64,
    pub layer_overhead_us: f64,
    pub step_overhead_ms: f64,
    pub launch_overhead_us: f64,
    pub graph_launch_overhead_us: f64,
    pub sync_jitter: f64,
    pub memory_reserve_gb: f64,
}

impl FittedEfficiency {
    /// The model's efficiencies: this family's fitted values with an accelerator's measured
    /// memory and network fractions.
    pub fn with_measured(&self, memory: f64, scale_up: f64, scale_out: f64) -> Efficiency {
        Efficiency {
            gemm: self.gemm,
            gemm_half_dim: self.gemm_half_dim,
            low_precision_gemm: self.low_precision_gemm,
            attention: self.attention,
            attention_flash2: self.attention_flash2,
            attention_flash1: self.attention_flash1,
            layer_overhead_s: self.layer_overhead_us * 1e-6,
            step_overhead_s: self.step_overhead_ms * 1e-3,
            launch_overhead_s: self.launch_overhead_us * 1e-6,
            graph_launch_overhead_s: self.graph_launch_overhead_us * 1e-6,
            sync_jitter: self.sync_jitter,
            memory,
            scale_up,
            scale_out,
        }
    }
}

/// Dense peak TFLOP/s per format; absent where the accelerator has no such tensor rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeakTflops {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp16: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bf16: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp8: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp4: Option<f64>,
}

impl PeakTflops {
    pub fn get(&self, dtype: Dtype) -> Option<f64> {
        match dtype {
            Dtype::Fp16 => self.fp16,
            Dtype::Bf16 => self.bf16,
            Dtype::Fp8 => self.fp8,
            Dtype::Fp4 => self.fp4,
        }
    }
}

/// One accelerator as the catalog file states it, in the file's units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorSpec {
    pub id: String,
    pub name: String,
    pub year: u32,
    /// Id of the efficiency family.
    pub efficiency: String,
    pub peak_tflops: PeakTflops,
    pub hbm_gb: f64,
    pub hbm_tb_per_s: f64,
    pub scale_up_gb_per_s: f64,
    pub scale_up_domain: u32,
    /// The scale-up domain sizes the part ships in (`[search] scale_up_domain` takes these
    /// only); default: `scale_up_domain` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_domains: Option<Vec<u32>>,
    pub scale_out_gbps: f64,
    /// The NIC rates per accelerator the part is built with (`[search] scale_out_gbps` takes
    /// these only); default: `scale_out_gbps` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_gbps_options: Option<Vec<f64>>,
    pub scale_up_latency_us: f64,
    pub scale_out_latency_us: f64,
    pub memory_efficiency: f64,
    pub scale_up_efficiency: f64,
    pub scale_out_efficiency: f64,
    pub tdp_w: f64,
    pub power_all_in_w: f64,
    pub average_power_fraction: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_hour_usd: Option<f64>,
    /// Unexpected interruptions per accelerator-hour (default: the facility's figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate_per_hour: Option<f64>,
    /// The link to host memory, per accelerator and direction, as copies reach it (default
    /// [`DEFAULT_HOST_LINK_GB_PER_S`]: PCIe 4.0 x16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link_gb_per_s: Option<f64>,
    /// Host memory per accelerator (default [`DEFAULT_HOST_MEMORY_GB`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_memory_gb: Option<f64>,
    /// A scale-up domain wired as a torus (TPU ICI): chips per axis and the dimensions (2 for
    /// v5e/v6e, 3 for v4/v5p); absent for a switched domain (NVLink). `scale_up_gb_per_s` is
    /// then a bidirectional ring's bandwidth along one axis (two links, one direction each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torus_axis: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torus_dims: Option<u32>,
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

/// A model preset, in scenario-file keys.
impl AcceleratorSpec {
    /// The scale-up domain sizes this part ships in.
    pub fn shipped_domains(&self) -> Vec<u32> {
        self.scale_up_domains
            .clone()
            .unwrap_or(vec![self.scale_up_domain])
    }

    /// The NIC rates per accelerator this part is built with.
    pub fn shipped_nic_rates(&self) -> Vec<f64> {
        self.scale_out_gbps_options
            .clone()
            .unwrap_or(vec![self.scale_out_gbps])
    }

    /// This part in a scale-up domain of `domain` accelerators: a torus domain takes the axis
    /// length that many chips give (None when `domain` is not a torus of equal axes, or is 0).
    pub fn with_scale_up_domain(&self, domain: u32) -> Option<AcceleratorSpec> {
        let mut spec = self.clone();
        spec.scale_up_domain = domain;
        if domain == 0 {
            return None;
        }
        if let Some(dims) = self.torus_dims.filter(|d| *d > 0) {
            let axis = (domain as f64).powf(1.0 / dims as f64).round() as u32;
            if axis.checked_pow(dims) != Some(domain) {
                return None;
            }
            spec.torus_axis = Some(axis);
        }
        Some(spec)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPreset {
    pub id: String,
    pub layers: u32,
    pub hidden: u32,
    pub heads: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u32>,
    pub ffn: u32,
    pub ffn_kind: FfnKind,
    pub vocab: u32,
    pub seq_len: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts_per_token: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_ffn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_experts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense_layers: Option<u32>,
    #[serde(default)]
    pub tied_embeddings: bool,
    /// "mla" for multi-head latent attention, with its ranks and head widths below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_lora_rank: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_lora_rank: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qk_nope_head_dim: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qk_rope_head_dim: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v_head_dim: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window_layers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtp_layers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_group: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topk_group: Option<u32>,
    pub source: String,
}

/// One catalog file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    facility: Option<FacilityFile>,
    network: Option<network::NetworkPartsFile>,
    #[serde(default)]
    efficiency: Vec<EfficiencyFamily>,
    #[serde(default)]
    accelerator: Vec<AcceleratorSpec>,
    #[serde(default)]
    model: Vec<ModelPreset>,
    #[serde(default)]
    stack: Vec<StackSpec>,
    #[serde(default)]
    assumption: Vec<AssumptionSpec>,
}

/// The merged catalog: built-in entries, replaced or extended by user files.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Catalog {
    pub facility: Facility,
    /// The parts of a scale-out fabric, for networks other than the catalog's own.
    pub network: NetworkParts,
    pub efficiency: Vec<EfficiencyFamily>,
    pub accelerators: Vec<AcceleratorSpec>,
    pub models: Vec<ModelPreset>,
    pub stacks: Vec<StackSpec>,
    /// The uncertain inputs and their ranges (`plan --sensitivity`, `--uncertainty`).
    pub assumptions: Vec<AssumptionSpec>,
}

fn parse_file(text: &str, origin: &str) -> Result<CatalogFile, Error> {
    crate::tomlfile::parse(text).map_err(|message| Error::Catalog {
        origin: origin.to_string(),
        message,
    })
}

fn join_ids<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.collect::<Vec<_>>().join(", ")
}

fn replace_or_push<T>(items: &mut Vec<T>, item: T, id: impl Fn(&T) -> &str) {
    match items.iter().position(|x| id(x) == id(&item)) {
        Some(i) => items[i] = item,
        None => items.push(item),
    }
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> Catalog {
        let mut c = Catalog {
            facility: Facility {
                pue: 1.0,
                electricity_usd_per_mwh: 0.0,
                pod_size: 1e30,
                pod_oversubscription: 1.0,
                topology: Topology::default(),
                cross_pod_latency_us: 0.0,
                site_power_mw: 0.0,
                site_oversubscription: 1.0,
                inter_site_latency_ms: 0.0,
                checkpoint_gb_per_s: 1.0,
                restart_minutes: 0.0,
                failure_rate_per_hour: 0.0,
                server_cost_factor: 1.0,
                network_cost_share: 0.0,
                facility_usd_per_mw: 0.0,
                sources: BTreeMap::new(),
            },
            network: NetworkParts::none(),
            efficiency: vec![],
            accelerators: vec![],
            models: vec![],
            stacks: vec![],
            assumptions: vec![],
        };
        c.merge_text(BUILTIN_ACCELERATORS, "built-in catalog/accelerators.toml")
            .and_then(|_| c.merge_text(BUILTIN_MODELS, "built-in catalog/models.toml"))
            .and_then(|_| c.merge_text(BUILTIN_STACKS, "built-in catalog/stacks.toml"))
            .and_then(|_| c.merge_text(BUILTIN_ASSUMPTIONS, "built-in catalog/assumptions.toml"))
            .expect("the built-in catalog is valid (checked by tests)");
        c
    }

    /// The built-in catalog with the user's files merged over it, in order.
    pub fn load(user_files: &[impl AsRef<Path>]) -> Result<Catalog, Error> {
        let mut c = Catalog::builtin();
        for path in user_files {
            let path = path.as_ref();
            let origin = path.display().to_string();
            let text = crate::error::read_text(path, |message| Error::Catalog {
                origin: origin.clone(),
                message,
            })?;
            c.merge_text(&text, &origin)?;
        }
        Ok(c)
    }

    /// Merge one catalog file's text: entries with a known id replace it, others are added.
    pub fn merge_text(&mut self, text: &str, origin: &str) -> Result<(), Error> {
        let file = parse_file(text, origin)?;
        if let Some(f) = file.facility {
            self.facility.merge(f);
        }
        if let Some(n) = file.network {
            self.network.merge(n);
        }
        for e in file.efficiency {
            replace_or_push(&mut self.efficiency, e, |x| &x.id);
        }
        for a in file.accelerator {
            replace_or_push(&mut self.accelerators, a, |x| &x.id);
        }
        for m in file.model {
            replace_or_push(&mut self.models, m, |x| &x.id);
        }
        for st in file.stack {
            replace_or_push(&mut self.stacks, st, |x| &x.id);
        }
        for a in file.assumption {
            replace_or_push(&mut self.assumptions, a, |x| &x.id);
        }
        self.check(origin)
    }

    fn check(&self, origin: &str) -> Result<(), Error> {
        let bad = |what: String| Error::Catalog {
            origin: origin.to_string(),
            message: what,
        };
        for f in &self.efficiency {
            self.fitted_efficiency(&f.id).map_err(bad)?;
            for key in f.fit.iter().flatten() {
                if !FITTABLE.contains(&key.as_str()) {
                    return Err(bad(format!(
                        "efficiency family `{}`: fit lists `{key}`; expected some of {}",
                        f.id,
                        FITTABLE.join(", ")
                    )));
                }
            }
        }
        for st in &self.stacks {
            if let Some(problem) = st.problem() {
                return Err(bad(problem));
            }
        }
        for a in &self.assumptions {
            if let Some(problem) = a.problem() {
                return Err(bad(problem));
            }
        }
        // Ids: none empty, none twice within a kind (a user file replaces by id, so a repeat
        // inside one kind can only come from a list that names it twice).
        for (kind, ids) in [
            (
                "accelerator",
                self.accelerators
                    .iter()
                    .map(|a| a.id.as_str())
                    .collect::<Vec<_>>(),
            ),
            ("model", self.models.iter().map(|m| m.id.as_str()).collect()),
            ("stack", self.stacks.iter().map(|s| s.id.as_str()).collect()),
            (
                "efficiency",
                self.efficiency.iter().map(|f| f.id.as_str()).collect(),
            ),
            (
                "assumption",
                self.assumptions.iter().map(|a| a.id.as_str()).collect(),
            ),
        ] {
            for (i, id) in ids.iter().enumerate() {
                if id.trim().is_empty() {
                    return Err(bad(format!("a [[{kind}]] entry has an empty id: give it one")));
                }
                if ids[..i].contains(id) {
                    return Err(bad(format!("[[{kind}]] `{id}` appears twice: keep one")));
                }
            }
        }
        for m in &self.models {
            for (key, v) in [
                ("layers", m.layers),
                ("hidden", m.hidden),
                ("heads", m.heads),
                ("ffn", m.ffn),
                ("vocab", m.vocab),
                ("seq_len", m.seq_len),
            ] {
                if v == 0 {
                    return Err(bad(format!("model `{}`: {key} = 0, expected at least 1", m.id)));
                }
            }
            if crate::model::too_many_layers(m.layers, m.mtp_layers.unwrap_or(0)) {
                return Err(bad(format!(
                    "model `{}`: layers = {} with mtp_layers, expected at most {}",
                    m.id,
                    m.layers,
                    crate::model::MAX_LAYERS
                )));
            }
        }
        if let Some(problem) = self.facility.problem() {
            return Err(bad(format!("[facility] {problem}")));
        }
        if let Some(problem) = self.network.problem() {
            return Err(bad(problem));
        }
        for a in &self.accelerators {
            for d in Dtype::ALL {
                if let Some(v) = a.peak_tflops.get(d) {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(bad(format!(
                            "accelerator `{}`: peak_tflops {} = {v}, expected a positive number",
                            a.id,
                            d.name()
                        )));
                    }
                }
            }
            for (key, v) in [
                ("tdp_w", Some(a.tdp_w)),
                ("price_usd", a.price_usd),
                ("price_per_hour_usd", a.price_per_hour_usd),
                ("host_link_gb_per_s", a.host_link_gb_per_s),
                ("host_memory_gb", a.host_memory_gb),
            ] {
                if let Some(v) = v {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(bad(format!(
                            "accelerator `{}`: {key} = {v}, expected a positive number",
                            a.id
                        )));
                    }
                }
            }
            if let Some(v) = a.failure_rate_per_hour {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(bad(format!(
                        "accelerator `{}`: failure_rate_per_hour = {v}, expected zero or more",
                        a.id
                    )));
                }
            }
            if let Some(domains) = &a.scale_up_domains {
                if !domains.contains(&a.scale_up_domain) {
                    return Err(bad(format!(
                        "accelerator `{}`: scale_up_domains = {domains:?} leaves out its scale_up_domain = {}: list it",
                        a.id, a.scale_up_domain
                    )));
                }
                if let Some(d) = domains.iter().find(|d| a.with_scale_up_domain(**d).is_none()) {
                    return Err(bad(format!(
                        "accelerator `{}`: scale_up_domains lists {d}, which is not a torus of {} equal axes: list square (2-D) or cubic (3-D) slices",
                        a.id,
                        a.torus_dims.unwrap_or(0)
                    )));
                }
            }
            if let Some(rates) = &a.scale_out_gbps_options {
                if !rates.contains(&a.scale_out_gbps) {
                    return Err(bad(format!(
                        "accelerator `{}`: scale_out_gbps_options = {rates:?} leaves out its scale_out_gbps = {}: list it",
                        a.id, a.scale_out_gbps
                    )));
                }
            }
            if a.average_power_fraction > 1.0 {
                return Err(bad(format!(
                    "accelerator `{}`: average_power_fraction = {}, expected a fraction of at most 1",
                    a.id, a.average_power_fraction
                )));
            }
            let positive = [
                ("hbm_gb", a.hbm_gb),
                ("hbm_tb_per_s", a.hbm_tb_per_s),
                ("scale_up_gb_per_s", a.scale_up_gb_per_s),
                ("scale_out_gbps", a.scale_out_gbps),
                ("memory_efficiency", a.memory_efficiency),
                ("scale_up_efficiency", a.scale_up_efficiency),
                ("scale_out_efficiency", a.scale_out_efficiency),
                ("power_all_in_w", a.power_all_in_w),
                ("average_power_fraction", a.average_power_fraction),
            ];
            for (key, v) in positive {
                if !(v.is_finite() && v > 0.0) {
                    return Err(bad(format!(
                        "accelerator `{}`: {key} = {v}, expected a positive number",
                        a.id
                    )));
                }
            }
            for (key, v) in [
                ("scale_up_latency_us", a.scale_up_latency_us),
                ("scale_out_latency_us", a.scale_out_latency_us),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(bad(format!(
                        "accelerator `{}`: {key} = {v}, expected zero or more",
                        a.id
                    )));
                }
            }
            if a.scale_up_domain == 0 {
                return Err(bad(format!(
                    "accelerator `{}`: scale_up_domain = 0, expected at least 1",
                    a.id
                )));
            }
            if Dtype::ALL.iter().all(|d| a.peak_tflops.get(*d).is_none()) {
                return Err(bad(format!(
                    "accelerator `{}`: peak_tflops lists no format, expected e.g. {{ bf16 = 989.4 }}",
                    a.id
                )));
            }
            if !self.efficiency.iter().any(|f| f.id == a.efficiency) {
                return Err(bad(format!(
                    "accelerator `{}`: efficiency = \"{}\" is not an efficiency family{}; known: {}",
                    a.id,
                    a.efficiency,
                    crate::error::did_you_mean(&a.efficiency, self.efficiency.iter().map(|f| f.id.as_str())),
                    self.efficiency
                        .iter()
                        .map(|f| f.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The family's values with `like` chains followed.
    pub fn fitted_efficiency(&self, family: &str) -> Result<FittedEfficiency, String> {
        let mut chain: Vec<&EfficiencyFamily> = vec![];
        let mut id = family;
        loop {
            let f = self
                .efficiency
                .iter()
                .find(|f| f.id == id)
                .ok_or_else(|| format!("efficiency family `{id}` is not in the catalog"))?;
            if chain.iter().any(|c| c.id == f.id) {
                return Err(format!(
                    "efficiency family `{family}`: `like` loops back to `{id}`"
                ));
            }
            chain.push(f);
            match &f.like {
                Some(next) => id = next,
                None => break,
            }
        }
        let pick = |get: fn(&EfficiencyFamily) -> Option<f64>, key: &str| {
            chain
                .iter()
                .find_map(|f| get(f))
                .ok_or_else(|| format!("efficiency family `{family}` has no `{key}`"))
        };
        // Kernels a family does not price take the next faster generation's fraction (silicon
        // without FlashAttention-3 runs FlashAttention-2 as its best).
        let flash2 = match chain.iter().find_map(|f| f.attention_flash2) {
            Some(v) => v,
            None => pick(|f| f.attention, "attention")?,
        };
        let e = FittedEfficiency {
            gemm: pick(|f| f.gemm, "gemm")?,
            gemm_half_dim: pick(|f| f.gemm_half_dim, "gemm_half_dim")?,
            low_precision_gemm: pick(|f| f.low_precision_gemm, "low_precision_gemm")?,
            attention: pick(|f| f.attention, "attention")?,
            attention_flash2: flash2,
            attention_flash1: chain.iter().find_map(|f| f.attention_flash1).unwrap_or(flash2),
            layer_overhead_us: pick(|f| f.layer_overhead_us, "layer_overhead_us")?,
            step_overhead_ms: pick(|f| f.step_overhead_ms, "step_overhead_ms")?,
            launch_overhead_us: pick(|f| f.launch_overhead_us, "launch_overhead_us")?,
            graph_launch_overhead_us: pick(|f| f.graph_launch_overhead_us, "graph_launch_overhead_us")?,
            sync_jitter: pick(|f| f.sync_jitter, "sync_jitter")?,
            memory_reserve_gb: pick(|f| f.memory_reserve_gb, "memory_reserve_gb")?,
        };
        for (key, v) in [
            ("gemm", e.gemm),
            ("low_precision_gemm", e.low_precision_gemm),
            ("attention", e.attention),
            ("attention_flash2", e.attention_flash2),
            ("attention_flash1", e.attention_flash1),
        ] {
            if !(v > 0.0 && v <= 1.5) {
                return Err(format!(
                    "efficiency family `{family}`: {key} = {v}, expected a fraction in (0, 1.5]"
                ));
            }
        }
        if ![
            e.gemm_half_dim,
            e.memory_reserve_gb,
            e.layer_overhead_us,
            e.step_overhead_ms,
            e.launch_overhead_us,
            e.graph_launch_overhead_us,
            e.sync_jitter,
        ]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
        {
            return Err(format!(
                "efficiency family `{family}`: gemm_half_dim, layer_overhead_us, step_overhead_ms, launch_overhead_us, graph_launch_overhead_us, sync_jitter and memory_reserve_gb must be zero or more"
            ));
        }
        Ok(e)
    }

    /// Replace a family's fitted values (used by the fitter and its cross-validation).
    pub fn set_fitted(&mut self, family: &str, e: &FittedEfficiency) {
        if let Some(f) = self.efficiency.iter_mut().find(|f| f.id == family) {
            f.set_values(e);
        }
    }

    pub fn accelerator(&self, id: &str) -> Option<&AcceleratorSpec> {
        self.accelerators.iter().find(|a| a.id == id)
    }

    pub fn model(&self, id: &str) -> Option<&ModelPreset> {
        self.models.iter().find(|m| m.id == id)
    }

    pub fn stack(&self, id: &str) -> Option<&StackSpec> {
        self.stacks.iter().find(|s| s.id == id)
    }

    /// The stack ids, comma-separated (for messages that list the known ones).
    pub fn stack_ids(&self) -> String {
        join_ids(self.stacks.iter().map(|s| s.id.as_str()))
    }

    pub fn accelerator_ids(&self) -> String {
        join_ids(self.accelerators.iter().map(|a| a.id.as_str()))
    }

    pub fn model_ids(&self) -> String {
        join_ids(self.models.iter().map(|m| m.id.as_str()))
    }

    /// The model's view of an accelerator: SI units and resolved efficiencies, in this catalog's
    /// facility.
    pub fn hardware(&self, spec: &AcceleratorSpec) -> Hardware {
        self.hardware_in(spec, &self.facility)
    }

    /// The model's view of an accelerator in `facility`.
    pub fn hardware_in(&self, spec: &AcceleratorSpec, facility: &Facility) -> Hardware {
        let fitted = self
            .fitted_efficiency(&spec.efficiency)
            .expect("families are checked when the catalog is loaded");
        let peak = |d: Dtype| spec.peak_tflops.get(d).unwrap_or(0.0) * 1e12;
        // Above three-tier pods, traffic climbs two more switch tiers than above two-tier ones:
        // the hops the joining tier adds once more (`cross_pod_latency_us`, its source). Inside
        // a pod a ring's neighbour hops stay in their leaf-spine block, at the scale-out latency.
        let extra_tiers = facility.topology.tiers() - Topology::TwoTier.tiers();
        let cross_pod_latency_us = facility.cross_pod_latency_us * (1 + extra_tiers) as f64;
        let (_, network_w) = self.network_difference(spec, facility);
        Hardware {
            peak_flops_per_s: [
                peak(Dtype::Fp16),
                peak(Dtype::Bf16),
                peak(Dtype::Fp8),
                peak(Dtype::Fp4),
            ],
            hbm_bytes: spec.hbm_gb * 1e9,
            hbm_bytes_per_s: spec.hbm_tb_per_s * 1e12,
            scale_up_bytes_per_s: spec.scale_up_gb_per_s * 1e9,
            scale_up_domain: spec.scale_up_domain,
            scale_up_latency_s: spec.scale_up_latency_us * 1e-6,
            torus_axis: spec.torus_axis.unwrap_or(0) as f64,
            torus_dims: spec.torus_dims.unwrap_or(0) as f64,
            scale_out_bytes_per_s: spec.scale_out_gbps * 1e9 / 8.0,
            scale_out_latency_s: spec.scale_out_latency_us * 1e-6,
            pod_size: facility.pod_size,
            pod_oversubscription: facility.pod_oversubscription,
            cross_pod_latency_s: (spec.scale_out_latency_us + cross_pod_latency_us) * 1e-6,
            site_size: facility.site_size(spec.power_all_in_w + network_w),
            inter_site_bytes_per_s: spec.scale_out_gbps * 1e9 / 8.0 / facility.site_oversubscription,
            inter_site_latency_s: facility.inter_site_latency_ms * 1e-3,
            memory_reserve_bytes: fitted.memory_reserve_gb * 1e9,
            host_link_bytes_per_s: spec.host_link_gb_per_s.unwrap_or(DEFAULT_HOST_LINK_GB_PER_S) * 1e9,
            host_memory_bytes: spec.host_memory_gb.unwrap_or(DEFAULT_HOST_MEMORY_GB) * 1e9,
            efficiency: fitted.with_measured(
                spec.memory_efficiency,
                spec.scale_up_efficiency,
                spec.scale_out_efficiency,
            ),
        }
    }

    /// What the network of `spec` in `facility` costs and draws per accelerator beyond the
    /// network the catalog's prices hold (the catalog entry's NIC rate in the catalog's
    /// `[facility]` topology and oversubscription): USD and W, negative for a cheaper one.
    pub fn network_difference(&self, spec: &AcceleratorSpec, facility: &Facility) -> (f64, f64) {
        let reference_gbps = self
            .accelerator(&spec.id)
            .map(|a| a.scale_out_gbps)
            .unwrap_or(spec.scale_out_gbps);
        let n = &self.network;
        let (usd, w) = n.share_per_accelerator(
            spec.scale_out_gbps,
            facility.topology,
            facility.pod_oversubscription,
        );
        let (reference_usd, reference_w) = n.share_per_accelerator(
            reference_gbps,
            self.facility.topology,
            self.facility.pod_oversubscription,
        );
        (usd - reference_usd, w - reference_w)
    }

    /// The network an accelerator runs on in `facility`.
    pub fn network_of(&self, spec: &AcceleratorSpec, facility: &Facility) -> Network {
        Network {
            scale_up_domain: spec.scale_up_domain,
            scale_out_gbps: spec.scale_out_gbps,
            pod_size: facility.pod_size,
            pod_oversubscription: facility.pod_oversubscription,
            topology: facility.topology,
        }
    }

    /// Power and money facts of an accelerator in this catalog's facility. Missing prices are
    /// NaN here; the scenario checks that the pricing it uses has one.
    pub fn economics(&self, spec: &AcceleratorSpec, pricing: Pricing) -> Economics {
        self.economics_in(spec, &self.facility, pricing)
    }

    /// Power and money facts of an accelerator in `facility`, its network's parts included:
    /// a network other than the catalog's adds the difference of its parts to the power and the
    /// capital cost, and scales a rental price as it scales the capital cost.
    pub fn economics_in(&self, spec: &AcceleratorSpec, facility: &Facility, pricing: Pricing) -> Economics {
        let (network_usd, network_w) = self.network_difference(spec, facility);
        let price_usd = spec.price_usd.unwrap_or(f64::NAN);
        let power_all_in_w = spec.power_all_in_w + network_w;
        let catalog_capex_usd = facility.capex_per_accelerator_usd(price_usd, spec.power_all_in_w);
        let capex_usd = facility.capex_per_accelerator_usd(price_usd, power_all_in_w) + network_usd;
        let rental_scale = if catalog_capex_usd.is_finite() && catalog_capex_usd > 0.0 {
            capex_usd / catalog_capex_usd
        } else {
            1.0
        };
        Economics {
            power_all_in_w,
            average_power_fraction: spec.average_power_fraction,
            pue: facility.pue,
            electricity_usd_per_mwh: facility.electricity_usd_per_mwh,
            price_usd,
            price_per_hour_usd: spec.price_per_hour_usd.unwrap_or(f64::NAN) * rental_scale,
            capex_per_accelerator_usd: capex_usd,
            failure_rate_per_hour: spec
                .failure_rate_per_hour
                .unwrap_or(facility.failure_rate_per_hour),
            checkpoint_bytes_per_s: facility.checkpoint_gb_per_s * 1e9,
            restart_s: facility.restart_minutes * 60.0,
            pricing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_loads_and_has_the_required_ids() {
        let c = Catalog::builtin();
        for id in [
            "v100-32gb",
            "a100-40gb",
            "a100-80gb",
            "h100-sxm",
            "h800",
            "h200",
            "b200",
            "gb200",
            "gb300",
            "mi300x",
            "mi325x",
            "mi355x",
            "tpu-v5p",
            "tpu-v6e",
            "gaudi3",
        ] {
            assert!(c.accelerator(id).is_some(), "{id}");
        }
        for id in [
            "gpt3-175b",
            "llama3-8b",
            "llama3-70b",
            "llama3-405b",
            "megatron-1t",
            "mixtral-8x22b",
            "deepseek-v3",
        ] {
            assert!(c.model(id).is_some(), "{id}");
        }
    }

    #[test]
    fn every_accelerator_cites_a_source_for_each_kind_of_number() {
        let c = Catalog::builtin();
        for a in &c.accelerators {
            for key in [
                "compute",
                "memory",
                "scale_up",
                "scale_out",
                "latency",
                "memory_efficiency",
                "scale_up_efficiency",
                "scale_out_efficiency",
                "power",
                "price",
                "host",
            ] {
                assert!(
                    a.sources.get(key).is_some_and(|s| s.len() > 10),
                    "{} lacks sources.{key}",
                    a.id
                );
            }
        }
        for f in &c.efficiency {
            assert!(f.sources.contains_key("fit"), "{} lacks sources.fit", f.id);
        }
        assert!(c.facility.sources.len() >= 2);
        for m in &c.models {
            assert!(m.source.len() > 10, "{}", m.id);
        }
    }

    #[test]
    fn like_chains_resolve_to_the_fitted_family() {
        let c = Catalog::builtin();
        assert_eq!(
            c.fitted_efficiency("amd-cdna"),
            c.fitted_efficiency("nvidia-hopper")
        );
    }

    #[test]
    fn hardware_converts_units() {
        let c = Catalog::builtin();
        let hw = c.hardware(c.accelerator("h100-sxm").unwrap());
        assert_eq!(hw.peak(Dtype::Bf16), 989.4e12);
        assert_eq!(hw.scale_out_bytes_per_s, 50e9);
        assert_eq!(hw.hbm_bytes, 80e9);
        assert!((hw.scale_up_latency_s - 3.4e-6).abs() < 1e-18);
        let v100 = c.hardware(c.accelerator("v100-32gb").unwrap());
        assert_eq!(v100.peak(Dtype::Bf16), 0.0);
    }

    fn accelerators_file(items: &[AcceleratorSpec]) -> String {
        #[derive(Serialize)]
        struct File<'a> {
            accelerator: &'a [AcceleratorSpec],
        }
        toml::to_string(&File { accelerator: items }).unwrap()
    }

    #[test]
    fn user_file_replaces_and_adds_entries() {
        let mut c = Catalog::builtin();
        let n = c.accelerators.len();
        let mut h100 = c.accelerator("h100-sxm").unwrap().clone();
        h100.hbm_gb = 96.0;
        let mut custom = h100.clone();
        custom.id = "my-part".into();
        c.merge_text(&accelerators_file(&[h100, custom]), "test").unwrap();
        assert_eq!(c.accelerators.len(), n + 1);
        assert_eq!(c.accelerator("h100-sxm").unwrap().hbm_gb, 96.0);
    }

    #[test]
    fn unknown_catalog_key_is_named() {
        let mut c = Catalog::builtin();
        let err = c
            .merge_text("[[efficiency]]\nid = \"x\"\ngemmm = 0.5\n", "mine.toml")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("gemmm") && msg.contains("mine.toml"), "{msg}");
    }

    #[test]
    fn unknown_family_is_named_with_the_known_ones() {
        let mut c = Catalog::builtin();
        let mut a = c.accelerator("h100-sxm").unwrap().clone();
        a.efficiency = "nope".into();
        let msg = c
            .merge_text(&accelerators_file(&[a]), "mine.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("nope") && msg.contains("nvidia-hopper"), "{msg}");
    }
}
