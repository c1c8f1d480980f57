//! Scenario files: what a user writes (TOML), and the resolved, cross-checked scenario the model
//! runs on.
//!
//! This module owns the file format and every check on it. Unknown keys are errors that name
//! the key and its section; every value is checked (positive, divides what it must divide, fits
//! the model) and a bad value gets a message naming the key, the value and what was expected.
//! Nothing here panics on user input.

pub mod hf_config;

use crate::error::Error;
use crate::input::catalog::stacks::{grad_bytes, MicrobatchDefault};
use crate::input::catalog::{
    AcceleratorSpec, Catalog, Facility, ModelPreset, Network, PeakTflops, StackSpec, Topology, DEFAULT_STACK,
};
use crate::model::flops::total_params;
use crate::model::run::{Economics, Pricing};
use crate::model::{
    check_layout, check_placement, check_stack, sites, too_many_layers, AttentionKernel, Dtype, FfnKind,
    Hardware, Layout, Recompute, Training, Transformer, MAX_LAYERS,
};
use serde::{Deserialize, Serialize};

/// The scenario `clustersweep estimate` runs when given no file: LLaMA 3 70B on 2,048 H100s in
/// the layout of NVIDIA's DGX Cloud benchmark (dgxc_Llama3.1-70B_BF16_2048g in the calibration
/// set, measured at 14.66 s per step), trained on Llama 3's 15T tokens.
pub const DEFAULT_SCENARIO: &str = r#"# LLaMA 3 70B on 2,048 H100s, as NVIDIA's DGX Cloud benchmark lays it out.
[model]
preset = "llama3-70b"

[training]
global_batch = 4096      # sequences of 8,192 tokens: 32M tokens per step
tokens = 15e12           # Llama 3's pre-training budget
dtype = "bf16"

[cluster]
accelerator = "h100-sxm"
count = 2048

[layout]
tp = 4
pp = 4
cp = 2                   # dp = 2048 / (4 * 4 * 2) = 64
microbatch = 1
interleave = 5
recompute = "none"
sequence_parallel = true
zero = 1
"#;

/// `[model]` as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// What reports call the model (default: the preset's id, or "custom").
    pub name: Option<String>,
    pub preset: Option<String>,
    /// A Hugging Face `config.json` to read the shape from (instead of a preset); a relative
    /// path is taken from the scenario file's directory. Keys written beside it override it.
    pub hf_config: Option<String>,
    pub layers: Option<u32>,
    pub hidden: Option<u32>,
    pub heads: Option<u32>,
    pub kv_heads: Option<u32>,
    pub head_dim: Option<u32>,
    pub ffn: Option<u32>,
    pub ffn_kind: Option<FfnKind>,
    pub vocab: Option<u32>,
    pub seq_len: Option<u32>,
    pub experts: Option<u32>,
    pub experts_per_token: Option<u32>,
    pub expert_ffn: Option<u32>,
    pub shared_experts: Option<u32>,
    pub dense_layers: Option<u32>,
    pub tied_embeddings: Option<bool>,
    /// Attention variant: "mha" / "gqa" (the default, set by `kv_heads`), or "mla" (multi-head
    /// latent attention, DeepSeek-V2/V3). The keys below are Hugging Face config names.
    pub attention: Option<String>,
    pub q_lora_rank: Option<u32>,
    pub kv_lora_rank: Option<u32>,
    pub qk_nope_head_dim: Option<u32>,
    pub qk_rope_head_dim: Option<u32>,
    pub v_head_dim: Option<u32>,
    /// Sliding-window attention: the window in tokens, and on how many layers (default: all).
    pub sliding_window: Option<u32>,
    pub sliding_window_layers: Option<u32>,
    /// Multi-token prediction modules (DeepSeek-V3), each one more layer on the last stage.
    pub mtp_layers: Option<u32>,
    /// Group-limited routing: expert groups, and the groups a token's experts may come from.
    pub n_group: Option<u32>,
    pub topk_group: Option<u32>,
}

/// `[training]` as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// The software stack (`clustersweep catalog --stacks`); default megatron-core-2025.
    pub stack: Option<String>,
    pub global_batch: Option<u32>,
    pub tokens: Option<f64>,
    pub dtype: Option<Dtype>,
    pub optimizer: Option<String>,
    pub weight_bytes: Option<f64>,
    pub optimizer_state_bytes: Option<f64>,
    pub grad_dtype: Option<String>,
    /// Fused attention (default: the stack's kernel); false runs it unfused.
    pub flash_attention: Option<bool>,
    /// The attention kernel, overriding the stack's: "unfused", "flash1", "flash2" or "flash3".
    pub attention_kernel: Option<AttentionKernel>,
    pub dropout: Option<bool>,
    /// Tokens the busiest expert-parallel rank processes over the mean (default 1: balanced).
    pub moe_imbalance: Option<f64>,
}

/// `[cluster]` as written: the accelerator, how many, how they are paid for, and overrides of
/// any catalog field.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    pub accelerator: Option<String>,
    pub count: Option<u64>,
    pub pricing: Option<Pricing>,
    pub peak_tflops: Option<PeakTflops>,
    pub hbm_gb: Option<f64>,
    pub hbm_tb_per_s: Option<f64>,
    pub scale_up_gb_per_s: Option<f64>,
    pub scale_up_domain: Option<u32>,
    pub scale_out_gbps: Option<f64>,
    pub scale_up_latency_us: Option<f64>,
    pub scale_out_latency_us: Option<f64>,
    pub memory_efficiency: Option<f64>,
    pub scale_up_efficiency: Option<f64>,
    pub scale_out_efficiency: Option<f64>,
    pub tdp_w: Option<f64>,
    pub power_all_in_w: Option<f64>,
    pub average_power_fraction: Option<f64>,
    pub price_usd: Option<f64>,
    pub price_per_hour_usd: Option<f64>,
    pub pue: Option<f64>,
    pub electricity_usd_per_mwh: Option<f64>,
    pub failure_rate_per_hour: Option<f64>,
    pub pod_size: Option<f64>,
    pub pod_oversubscription: Option<f64>,
    /// How the scale-out fabric is built: "two-tier" (leaf-spine pods) or "three-tier".
    pub topology: Option<Topology>,
    pub cross_pod_latency_us: Option<f64>,
    pub site_power_mw: Option<f64>,
    pub site_oversubscription: Option<f64>,
    pub inter_site_latency_ms: Option<f64>,
    pub checkpoint_gb_per_s: Option<f64>,
    pub restart_minutes: Option<f64>,
}

/// Whether a section as written gives `key` a value.
fn section_gives(section: &impl Serialize, key: &str) -> bool {
    serde_json::to_value(section)
        .ok()
        .and_then(|v| v.get(key).map(|v| !v.is_null()))
        .unwrap_or(false)
}

impl ClusterSection {
    /// Whether the scenario sets `key` (`restart_minutes`) itself.
    pub fn sets(&self, key: &str) -> bool {
        section_gives(self, key)
    }
}

/// `[layout]` as written. Omitted degrees are 1, `dp` follows from the count.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutSection {
    pub tp: Option<u32>,
    pub pp: Option<u32>,
    pub dp: Option<u32>,
    pub cp: Option<u32>,
    pub ep: Option<u32>,
    /// Expert tensor parallelism, a divisor of tp (Megatron-Core's `--expert-tensor-parallel-size`).
    /// Default: tp where ep divides dp * cp (Megatron-Core's default), else 1 (the folded layout
    /// that fits: ep spread over the tensor- and data-parallel ranks).
    pub etp: Option<u32>,
    pub microbatch: Option<u32>,
    pub interleave: Option<u32>,
    pub recompute: Option<Recompute>,
    pub sequence_parallel: Option<bool>,
    pub tp_overlap: Option<bool>,
    pub zero: Option<u32>,
    /// With `recompute = "full"`: how many layers of each pipeline stage recompute (default:
    /// all).
    pub recompute_layers: Option<u32>,
    /// Layers of each pipeline stage whose activations are offloaded to host memory (default 0).
    pub offload_layers: Option<u32>,
    /// ZeRO shards inside each scale-up domain only, replicas across domains (default: where
    /// the stack shards so, as MaxText's ici_fsdp x dcn_data mesh).
    pub hybrid_shard: Option<bool>,
}

/// A scenario file as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub training: TrainingSection,
    #[serde(default)]
    pub cluster: ClusterSection,
    #[serde(default)]
    pub layout: LayoutSection,
    /// The axes of a sweep (`clustersweep sweep`); `estimate` ignores it.
    #[serde(default)]
    pub search: Option<SearchSection>,
    /// The limits of a plan (`clustersweep plan`); the other commands ignore it.
    #[serde(default)]
    pub constraints: Option<ConstraintsSection>,
}

/// A resolved scenario: every default filled in, every cross-check passed.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The preset the model came from, or "custom".
    pub model_name: String,
    /// The software stack's catalog entry.
    pub stack: StackSpec,
    pub model: Transformer,
    pub training: Training,
    /// The catalog entry with the scenario's overrides applied.
    pub accelerator: AcceleratorSpec,
    /// The network it runs on (`[cluster]`'s network keys, else the catalog's).
    pub network: Network,
    pub hardware: Hardware,
    pub economics: Economics,
    pub layout: Layout,
}

/// Tokens to train on when `[training] tokens` is absent: 20 per parameter, the compute-optimal
/// ratio of Hoffmann et al. 2022 (Chinchilla).
pub const CHINCHILLA_TOKENS_PER_PARAM: f64 = 20.0;

impl ScenarioFile {
    /// Parse TOML text; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<ScenarioFile, Error> {
        crate::tomlfile::parse(text).map_err(|message| Error::Scenario {
            origin: origin.to_string(),
            message,
        })
    }

    /// Read and parse a file.
    pub fn read(path: &std::path::Path) -> Result<ScenarioFile, Error> {
        let origin = path.display().to_string();
        let text = crate::error::read_text(path, |message| Error::Scenario {
            origin: origin.clone(),
            message,
        })?;
        let mut file = ScenarioFile::parse(&text, &origin)?;
        // hf_config is written relative to the scenario, not to where the command runs.
        if let (Some(config), Some(dir)) = (&file.model.hf_config, path.parent()) {
            if std::path::Path::new(config).is_relative() && !dir.as_os_str().is_empty() {
                file.model.hf_config = Some(dir.join(config).display().to_string());
            }
        }
        Ok(file)
    }

    /// Fill defaults from the catalog and check everything.
    pub fn resolve(&self, catalog: &Catalog, origin: &str) -> Result<Scenario, Error> {
        self.resolve_with(catalog, origin, true)
    }

    /// As [`ScenarioFile::resolve`]; with `require_price` false a pricing mode without a price
    /// is no error (its cost is NaN: `validate` predicts step times, not money).
    pub fn resolve_with(
        &self,
        catalog: &Catalog,
        origin: &str,
        require_price: bool,
    ) -> Result<Scenario, Error> {
        let err = |message: String| Error::Scenario {
            origin: origin.to_string(),
            message,
        };
        let (model_name, model) = resolve_model(&self.model, catalog).map_err(err)?;
        let stack = resolve_stack(&self.training, catalog).map_err(err)?;
        let accelerator = resolve_accelerator(&self.cluster, catalog).map_err(err)?;
        let training =
            resolve_training(&self.training, &model, self.training.global_batch, stack).map_err(err)?;
        if let Some(problem) = dtype_problem(training.dtype, &accelerator) {
            return Err(err(format!("[training] {problem}")));
        }
        if !training.stack.supports_format(training.dtype) {
            return Err(err(format!(
                "[training] dtype = \"{}\": stack `{}` cannot train in this format; it has {}",
                training.dtype.name(),
                stack.id,
                stack
                    .formats
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let layout = resolve_layout(&self.layout, &self.cluster, &model, &training, stack).map_err(err)?;
        let facility = resolve_facility(&self.cluster, catalog).map_err(err)?;
        let hardware = catalog.hardware_in(&accelerator, &facility);
        if let Some(v) = check_placement(&hardware, &layout) {
            return Err(err(format!(
                "[layout] {} on {} sites of {} accelerators: {}",
                layout_values(&layout, &model, &training),
                sites(&hardware, layout.accelerators() as f64),
                hardware.site_size,
                v.describe()
            )));
        }
        let economics =
            resolve_economics(&self.cluster, catalog, &accelerator, require_price).map_err(err)?;
        Ok(Scenario {
            model_name,
            stack: stack.clone(),
            model,
            training,
            network: catalog.network_of(&accelerator, &facility),
            accelerator,
            hardware,
            economics,
            layout,
        })
    }
}

/// The stack `[training] stack` names, or the default.
pub fn resolve_stack<'a>(t: &TrainingSection, catalog: &'a Catalog) -> Result<&'a StackSpec, String> {
    let id = t.stack.as_deref().unwrap_or(DEFAULT_STACK);
    catalog.stack(id).ok_or_else(|| {
        format!(
            "[training] stack = \"{id}\" is not a known stack{}; known: {} (`clustersweep catalog --stacks` describes them)",
            crate::error::did_you_mean(id, catalog.stacks.iter().map(|s| s.id.as_str())),
            catalog.stack_ids()
        )
    })
}

/// Power and money of an accelerator in the scenario's facility: the catalog's figures with
/// `[cluster]` overrides. With `require_price`, a pricing mode without a price is an error that
/// names the key to set.
pub fn resolve_economics(
    c: &ClusterSection,
    catalog: &Catalog,
    accelerator: &AcceleratorSpec,
    require_price: bool,
) -> Result<Economics, String> {
    let pricing = c.pricing.unwrap_or_default();
    let facility = resolve_facility(c, catalog)?;
    let economics = catalog.economics_in(accelerator, &facility, pricing);
    if require_price {
        if let Some(problem) = price_problem(pricing, accelerator) {
            return Err(problem);
        }
    }
    Ok(economics)
}

/// The catalog's facility with the `[cluster]` overrides of its fields.
pub fn resolve_facility(c: &ClusterSection, catalog: &Catalog) -> Result<Facility, String> {
    let mut f = catalog.facility.clone();
    if let Some(v) = c.pue {
        f.pue = positive("cluster", "pue", v)?;
    }
    if let Some(v) = c.electricity_usd_per_mwh {
        f.electricity_usd_per_mwh = non_negative("cluster", "electricity_usd_per_mwh", v)?;
    }
    if let Some(v) = c.pod_size {
        f.pod_size = positive("cluster", "pod_size", v)?;
    }
    if let Some(v) = c.pod_oversubscription {
        if !(v.is_finite() && v >= 1.0) {
            return Err(format!(
                "[cluster] pod_oversubscription = {v}: expected 1 (full bisection) or more"
            ));
        }
        f.pod_oversubscription = v;
    }
    if let Some(t) = c.topology {
        f.topology = t;
    }
    if let Some(v) = c.cross_pod_latency_us {
        f.cross_pod_latency_us = non_negative("cluster", "cross_pod_latency_us", v)?;
    }
    if let Some(v) = c.site_power_mw {
        f.site_power_mw = non_negative("cluster", "site_power_mw", v)?;
    }
    if let Some(v) = c.site_oversubscription {
        f.site_oversubscription = positive("cluster", "site_oversubscription", v)?;
    }
    if let Some(v) = c.inter_site_latency_ms {
        f.inter_site_latency_ms = non_negative("cluster", "inter_site_latency_ms", v)?;
    }
    if let Some(v) = c.checkpoint_gb_per_s {
        f.checkpoint_gb_per_s = positive("cluster", "checkpoint_gb_per_s", v)?;
    }
    if let Some(v) = c.restart_minutes {
        f.restart_minutes = non_negative("cluster", "restart_minutes", v)?;
    }
    // The same limits as the catalog's [facility] (PUE at least 1, shares below 1, ...).
    match f.problem() {
        Some(problem) => Err(format!("[cluster] {problem}")),
        None => Ok(f),
    }
}

/// Why `pricing` cannot price `accelerator`, if it cannot.
pub fn price_problem(pricing: Pricing, accelerator: &AcceleratorSpec) -> Option<String> {
    match pricing {
        Pricing::Rental if accelerator.price_per_hour_usd.is_none() => Some(format!(
            "[cluster] pricing = \"rental\" needs a rental price and the catalog has none for `{}`: set [cluster] price_per_hour_usd, or pricing = \"capex\"",
            accelerator.id
        )),
        Pricing::Capex if accelerator.price_usd.is_none() => Some(format!(
            "[cluster] pricing = \"capex\" needs a purchase price and the catalog has none for `{}`: set [cluster] price_usd, or pricing = \"rental\"",
            accelerator.id
        )),
        _ => None,
    }
}

/// Why an accelerator cannot run `dtype`, if it cannot.
pub fn dtype_problem(dtype: Dtype, accelerator: &AcceleratorSpec) -> Option<String> {
    if accelerator.peak_tflops.get(dtype).is_some() {
        return None;
    }
    let formats: Vec<&str> = Dtype::ALL
        .iter()
        .filter(|d| accelerator.peak_tflops.get(**d).is_some())
        .map(|d| d.name())
        .collect();
    Some(format!(
        "dtype = \"{}\": the catalog has no {} rate for `{}`; it has {}",
        dtype.name(),
        dtype.name(),
        accelerator.id,
        formats.join(", ")
    ))
}

fn positive(section: &str, key: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("[{section}] {key} = {v}: expected a positive number"))
    }
}

fn non_negative(section: &str, key: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "[{section}] {key} = {v}: expected zero or a positive number"
        ))
    }
}

fn positive_int(section: &str, key: &str, v: u32) -> Result<u32, String> {
    if v >= 1 {
        Ok(v)
    } else {
        Err(format!("[{section}] {key} = 0: expected a positive integer"))
    }
}

/// `[model]` with a Hugging Face config's keys under the ones written beside it.
fn import_hf_config(m: &ModelSection, path: &str) -> Result<ModelSection, String> {
    let key = format!("[model] hf_config = \"{path}\"");
    if m.preset.is_some() {
        return Err(format!("{key} and preset are both set: keep one"));
    }
    let text = crate::error::read_text(std::path::Path::new(path), Error::Usage)
        .map_err(|e| format!("{key}: {e}"))?;
    let from_config = hf_config::model_section(&text).map_err(|e| format!("{key}: {e}"))?;
    // Keys written beside hf_config win: overlay every key the section sets.
    let mut merged = serde_json::to_value(from_config).map_err(|e| e.to_string())?;
    let written = serde_json::to_value(m).map_err(|e| e.to_string())?;
    if let (Some(merged), Some(written)) = (merged.as_object_mut(), written.as_object()) {
        for (k, v) in written {
            if !v.is_null() && k != "hf_config" {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    let mut merged: ModelSection = serde_json::from_value(merged).map_err(|e| e.to_string())?;
    if merged.name.is_none() {
        merged.name = Some(
            std::path::Path::new(path)
                .parent()
                .and_then(|dir| dir.file_name())
                .map(|dir| dir.to_string_lossy().into_owned())
                .unwrap_or_else(|| "hf-config".into()),
        );
    }
    Ok(merged)
}

/// The model: a preset with explicit keys over it, or explicit keys alone.
pub fn resolve_model(m: &ModelSection, catalog: &Catalog) -> Result<(String, Transformer), String> {
    let imported;
    let m = match &m.hf_config {
        Some(path) => {
            imported = import_hf_config(m, path)?;
            &imported
        }
        None => m,
    };
    let preset = match &m.preset {
        Some(id) => Some(catalog.model(id).ok_or_else(|| {
            format!(
                "[model] preset = \"{id}\" is not a known preset{}; known: {}",
                crate::error::did_you_mean(id, catalog.models.iter().map(|m| m.id.as_str())),
                catalog.model_ids()
            )
        })?),
        None => None,
    };
    let need = |key: &str, given: Option<u32>, from_preset: Option<u32>| -> Result<u32, String> {
        let v = given.or(from_preset).ok_or_else(|| {
            format!(
                "[model] {key} is missing: give it, or a preset (known: {})",
                catalog.model_ids()
            )
        })?;
        positive_int("model", key, v)
    };
    let layers = need("layers", m.layers, preset.map(|p| p.layers))?;
    let mtp_layers = m.mtp_layers.or(preset.and_then(|p| p.mtp_layers)).unwrap_or(0);
    if too_many_layers(layers, mtp_layers) {
        return Err(format!(
            "[model] layers = {layers}, mtp_layers = {mtp_layers}: expected at most {MAX_LAYERS} together"
        ));
    }
    let hidden = need("hidden", m.hidden, preset.map(|p| p.hidden))?;
    let heads = need("heads", m.heads, preset.map(|p| p.heads))?;
    let ffn = need("ffn", m.ffn, preset.map(|p| p.ffn))?;
    let vocab = need("vocab", m.vocab, preset.map(|p| p.vocab))?;
    let seq_len = need("seq_len", m.seq_len, preset.map(|p| p.seq_len))?;
    let kv_heads = positive_int(
        "model",
        "kv_heads",
        m.kv_heads.or(preset.and_then(|p| p.kv_heads)).unwrap_or(heads),
    )?;
    if heads % kv_heads != 0 {
        return Err(format!(
            "[model] kv_heads = {kv_heads}: expected a divisor of heads ({heads})"
        ));
    }
    let head_dim = match m.head_dim.or(preset.and_then(|p| p.head_dim)) {
        Some(d) => positive_int("model", "head_dim", d)?,
        None => {
            if hidden % heads != 0 {
                return Err(format!(
                    "[model] heads = {heads} does not divide hidden = {hidden}: give head_dim explicitly"
                ));
            }
            hidden / heads
        }
    };
    let ffn_kind = m.ffn_kind.or(preset.map(|p| p.ffn_kind)).unwrap_or(FfnKind::Mlp);
    let experts = m.experts.or(preset.and_then(|p| p.experts)).unwrap_or(0);
    let mut model = Transformer {
        layers,
        hidden,
        heads,
        kv_heads,
        head_dim,
        ffn,
        ffn_kind,
        vocab,
        seq_len,
        experts,
        experts_per_token: 0,
        expert_ffn: 0,
        shared_experts: 0,
        dense_layers: 0,
        tied_embeddings: m
            .tied_embeddings
            .or(preset.map(|p| p.tied_embeddings))
            .unwrap_or(false),
        q_lora_rank: 0,
        kv_lora_rank: 0,
        qk_rope_head_dim: 0,
        v_head_dim: 0,
        sliding_window: 0,
        sliding_window_layers: 0,
        mtp_layers,
        n_group: 0,
        topk_group: 0,
    };
    resolve_attention(m, preset, &mut model)?;
    if experts > 1 {
        model.experts_per_token = m
            .experts_per_token
            .or(preset.and_then(|p| p.experts_per_token))
            .unwrap_or(1);
        model.expert_ffn = m.expert_ffn.or(preset.and_then(|p| p.expert_ffn)).unwrap_or(ffn);
        model.shared_experts = m
            .shared_experts
            .or(preset.and_then(|p| p.shared_experts))
            .unwrap_or(0);
        model.dense_layers = m
            .dense_layers
            .or(preset.and_then(|p| p.dense_layers))
            .unwrap_or(0);
        model.n_group = m.n_group.or(preset.and_then(|p| p.n_group)).unwrap_or(0);
        model.topk_group = m.topk_group.or(preset.and_then(|p| p.topk_group)).unwrap_or(0);
        if (model.n_group == 0) != (model.topk_group == 0)
            || model.topk_group > model.n_group
            || (model.n_group > 0 && !experts.is_multiple_of(model.n_group))
        {
            return Err(format!(
                "[model] n_group = {}, topk_group = {}: expected both 0 (no group-limited routing), or n_group dividing experts ({experts}) and 1 <= topk_group <= n_group",
                model.n_group, model.topk_group
            ));
        }
        if model.experts_per_token == 0 || model.experts_per_token > experts {
            return Err(format!(
                "[model] experts_per_token = {}: expected 1 to experts ({experts})",
                model.experts_per_token
            ));
        }
        positive_int("model", "expert_ffn", model.expert_ffn)?;
        if model.dense_layers >= layers {
            return Err(format!(
                "[model] dense_layers = {}: expected fewer than layers ({layers})",
                model.dense_layers
            ));
        }
    } else {
        for (key, v) in [
            ("experts_per_token", m.experts_per_token),
            ("expert_ffn", m.expert_ffn),
            ("shared_experts", m.shared_experts),
            ("dense_layers", m.dense_layers),
            ("n_group", m.n_group),
            ("topk_group", m.topk_group),
        ] {
            if v.is_some() {
                return Err(format!("[model] {key} is set but experts is {experts}: set experts > 1 for a mixture-of-experts model"));
            }
        }
    }
    let name = match &m.preset {
        _ if m.name.is_some() => m.name.clone().unwrap_or_default(),
        Some(id) if m.has_explicit_keys() => format!("{id} (modified)"),
        Some(id) => id.clone(),
        None => "custom".to_string(),
    };
    Ok((name, model))
}

/// The attention variant of `[model]` over its preset: multi-head latent attention's ranks and
/// head widths (all but `q_lora_rank`, which may be 0, are required), and the sliding window.
fn resolve_attention(
    m: &ModelSection,
    preset: Option<&ModelPreset>,
    model: &mut Transformer,
) -> Result<(), String> {
    let pick = |given: Option<u32>, from: fn(&ModelPreset) -> Option<u32>| given.or(preset.and_then(from));
    let attention = m
        .attention
        .clone()
        .or(preset.and_then(|p| p.attention.clone()))
        .unwrap_or_else(|| "gqa".into());
    let mla_keys = [
        ("q_lora_rank", pick(m.q_lora_rank, |p| p.q_lora_rank)),
        ("kv_lora_rank", pick(m.kv_lora_rank, |p| p.kv_lora_rank)),
        (
            "qk_nope_head_dim",
            pick(m.qk_nope_head_dim, |p| p.qk_nope_head_dim),
        ),
        (
            "qk_rope_head_dim",
            pick(m.qk_rope_head_dim, |p| p.qk_rope_head_dim),
        ),
        ("v_head_dim", pick(m.v_head_dim, |p| p.v_head_dim)),
    ];
    match attention.as_str() {
        "mha" | "gqa" => {
            if let Some((key, _)) = mla_keys.iter().find(|(_, v)| v.is_some()) {
                return Err(format!(
                    "[model] {key} is set but attention is not \"mla\": set attention = \"mla\" or drop it"
                ));
            }
        }
        "mla" => {
            let need = |i: usize| -> Result<u32, String> {
                let (key, v) = mla_keys[i];
                let v = v.ok_or_else(|| {
                    format!("[model] attention = \"mla\" needs {key} (the Hugging Face config's name)")
                })?;
                positive_int("model", key, v)
            };
            model.q_lora_rank = mla_keys[0].1.unwrap_or(0);
            model.kv_lora_rank = need(1)?;
            model.head_dim = need(2)?;
            model.qk_rope_head_dim = need(3)?;
            model.v_head_dim = need(4)?;
            if m.head_dim.is_some() {
                return Err(
                    "[model] head_dim is set with attention = \"mla\": give qk_nope_head_dim instead".into(),
                );
            }
            // Latent attention shares one latent across all heads: no grouped key/value heads.
            if model.kv_heads != model.heads && m.kv_heads.is_some() {
                return Err(format!(
                    "[model] kv_heads = {} with attention = \"mla\": latent attention expands keys and values for every head; drop kv_heads",
                    model.kv_heads
                ));
            }
            model.kv_heads = model.heads;
        }
        other => {
            return Err(format!(
                "[model] attention = \"{other}\": expected \"mha\", \"gqa\" or \"mla\""
            ))
        }
    }
    let window = pick(m.sliding_window, |p| p.sliding_window);
    let window_layers = pick(m.sliding_window_layers, |p| p.sliding_window_layers);
    match window {
        Some(w) => {
            model.sliding_window = positive_int("model", "sliding_window", w)?;
            model.sliding_window_layers = window_layers.unwrap_or(model.layers);
            if model.sliding_window_layers > model.layers {
                return Err(format!(
                    "[model] sliding_window_layers = {}: expected at most layers ({})",
                    model.sliding_window_layers, model.layers
                ));
            }
        }
        None if window_layers.is_some() => {
            return Err(
                "[model] sliding_window_layers is set without sliding_window: give the window in tokens"
                    .into(),
            )
        }
        None => {}
    }
    Ok(())
}

impl ModelSection {
    /// True when a key besides `preset` is set.
    fn has_explicit_keys(&self) -> bool {
        let counts = [
            self.layers,
            self.hidden,
            self.heads,
            self.kv_heads,
            self.head_dim,
            self.ffn,
            self.vocab,
            self.seq_len,
            self.experts,
            self.experts_per_token,
            self.expert_ffn,
            self.shared_experts,
            self.dense_layers,
            self.q_lora_rank,
            self.kv_lora_rank,
            self.qk_nope_head_dim,
            self.qk_rope_head_dim,
            self.v_head_dim,
            self.sliding_window,
            self.sliding_window_layers,
            self.mtp_layers,
            self.n_group,
            self.topk_group,
        ];
        counts.iter().any(Option::is_some)
            || self.ffn_kind.is_some()
            || self.tied_embeddings.is_some()
            || self.attention.is_some()
    }
}

/// The catalog entry `[cluster] accelerator` names, with `[cluster]` overrides applied.
pub fn resolve_accelerator(c: &ClusterSection, catalog: &Catalog) -> Result<AcceleratorSpec, String> {
    let id = c.accelerator.as_deref().ok_or_else(|| {
        format!(
            "[cluster] accelerator is missing; known: {}",
            catalog.accelerator_ids()
        )
    })?;
    let spec = catalog.accelerator(id).ok_or_else(|| {
        format!(
            "[cluster] accelerator = \"{id}\" is not in the catalog{}; known: {}",
            crate::error::did_you_mean(id, catalog.accelerators.iter().map(|a| a.id.as_str())),
            catalog.accelerator_ids()
        )
    })?;
    apply_overrides(c, spec.clone())
}

/// A catalog entry with the `[cluster]` overrides of any catalog field applied.
pub fn apply_overrides(c: &ClusterSection, mut spec: AcceleratorSpec) -> Result<AcceleratorSpec, String> {
    macro_rules! override_positive {
        ($($field:ident),*) => {$(
            if let Some(v) = c.$field {
                spec.$field = positive("cluster", stringify!($field), v)?;
            }
        )*};
    }
    override_positive!(
        hbm_gb,
        hbm_tb_per_s,
        scale_up_gb_per_s,
        scale_out_gbps,
        memory_efficiency,
        scale_up_efficiency,
        scale_out_efficiency,
        tdp_w,
        power_all_in_w,
        average_power_fraction
    );
    for (key, v, field) in [
        (
            "scale_up_latency_us",
            c.scale_up_latency_us,
            &mut spec.scale_up_latency_us,
        ),
        (
            "scale_out_latency_us",
            c.scale_out_latency_us,
            &mut spec.scale_out_latency_us,
        ),
    ] {
        if let Some(v) = v {
            *field = non_negative("cluster", key, v)?;
        }
    }
    if let Some(d) = c.scale_up_domain {
        spec.scale_up_domain = positive_int("cluster", "scale_up_domain", d)?;
    }
    if let Some(p) = c.price_usd {
        spec.price_usd = Some(non_negative("cluster", "price_usd", p)?);
    }
    if let Some(p) = c.price_per_hour_usd {
        spec.price_per_hour_usd = Some(non_negative("cluster", "price_per_hour_usd", p)?);
    }
    if let Some(r) = c.failure_rate_per_hour {
        spec.failure_rate_per_hour = Some(non_negative("cluster", "failure_rate_per_hour", r)?);
    }
    if let Some(peak) = c.peak_tflops {
        for d in Dtype::ALL {
            if let Some(v) = peak.get(d) {
                positive("cluster", &format!("peak_tflops.{}", d.name()), v)?;
            }
        }
        let merged = PeakTflops {
            fp16: peak.fp16.or(spec.peak_tflops.fp16),
            bf16: peak.bf16.or(spec.peak_tflops.bf16),
            fp8: peak.fp8.or(spec.peak_tflops.fp8),
            fp4: peak.fp4.or(spec.peak_tflops.fp4),
        };
        spec.peak_tflops = merged;
    }
    Ok(spec)
}

/// The largest token budget a scenario may ask for (see `resolve_training`).
pub const MAX_TOKENS: f64 = 1e20;

/// The training section under `stack`; `global_batch` is the batch to use (the sweep passes its
/// own). Keys the section leaves out take the stack's defaults (gradient dtype, dropout, the
/// attention kernel).
pub fn resolve_training(
    t: &TrainingSection,
    model: &Transformer,
    global_batch: Option<u32>,
    stack: &StackSpec,
) -> Result<Training, String> {
    let global_batch = positive_int(
        "training",
        "global_batch",
        global_batch.ok_or("[training] global_batch is missing: sequences per optimizer step")?,
    )?;
    let dtype = t.dtype.unwrap_or(Dtype::Bf16);
    if let Some(o) = &t.optimizer {
        if o != "adam" {
            return Err(format!("[training] optimizer = \"{o}\": expected \"adam\" (AdamW; set the byte counts to model others)"));
        }
    }
    // Gradient buffers and their reduction: the stack's default (Megatron-Core's
    // DistributedDataParallelConfig grad_reduce_in_fp32 = False and NeMo's performance recipes
    // run them in bf16; FSDP's DEFAULT mixed precision and Megatron-LM's older runs in fp32).
    let grad_name = t.grad_dtype.as_deref().unwrap_or(&stack.defaults.grad_dtype);
    let grad_bytes = grad_bytes(grad_name).ok_or_else(|| {
        format!("[training] grad_dtype = \"{grad_name}\": expected \"bf16\", \"fp16\" or \"fp32\"")
    })?;
    let tokens = match t.tokens {
        // At most 1e20: the GPU ranks in f32, and 1e300 tokens overflowed every objective
        // (counted valid, ranked none). Frontier runs train on ~1e13-1e14.
        Some(v) if v.is_finite() && v > 0.0 && v <= MAX_TOKENS => v,
        Some(v) => {
            return Err(format!(
                "[training] tokens = {v:e}: expected a positive number of at most {MAX_TOKENS:e}"
            ))
        }
        None => CHINCHILLA_TOKENS_PER_PARAM * total_params(model),
    };
    let attention = match (t.attention_kernel, t.flash_attention) {
        (Some(k), Some(fused)) if k.is_fused() != fused => {
            return Err(format!(
            "[training] attention_kernel = \"{}\" contradicts flash_attention = {fused}: give one of them",
            k.name()
        ))
        }
        (Some(k), _) => k,
        (None, Some(false)) => AttentionKernel::Unfused,
        // Fused asked of a stack whose own kernel is unfused: the first fused generation.
        (None, Some(true)) if !stack.attention.is_fused() => AttentionKernel::Flash2,
        (None, _) => stack.attention,
    };
    let stack_switches = stack.model_stack();
    Ok(Training {
        global_batch,
        tokens,
        dtype,
        weight_bytes: positive(
            "training",
            "weight_bytes",
            t.weight_bytes.unwrap_or(stack.defaults.weight_bytes),
        )?,
        grad_bytes,
        optimizer_state_bytes: non_negative(
            "training",
            "optimizer_state_bytes",
            t.optimizer_state_bytes
                .unwrap_or(stack.defaults.optimizer_state_bytes),
        )?,
        grad_reduce_bytes: grad_bytes,
        attention,
        dropout: t.dropout.unwrap_or(stack.defaults.dropout),
        stack: stack_switches,
        moe_imbalance: match t.moe_imbalance {
            Some(v) if v.is_finite() && v >= 1.0 => v,
            Some(v) => {
                return Err(format!(
                    "[training] moe_imbalance = {v}: expected at least 1 (the busiest expert-parallel rank's tokens over the mean; 1 is balanced)"
                ))
            }
            None => 1.0,
        },
    })
}

fn resolve_layout(
    l: &LayoutSection,
    c: &ClusterSection,
    model: &Transformer,
    training: &Training,
    stack: &StackSpec,
) -> Result<Layout, String> {
    let tp = positive_int("layout", "tp", l.tp.unwrap_or(1))?;
    let pp = positive_int("layout", "pp", l.pp.unwrap_or(1))?;
    let cp = positive_int("layout", "cp", l.cp.unwrap_or(1))?;
    let ep = positive_int("layout", "ep", l.ep.unwrap_or(1))?;
    // In 128 bits: three 32-bit factors (and dp) overflow 64.
    let model_parallel = tp as u128 * pp as u128 * cp as u128;
    let dp = match (l.dp, c.count) {
        (Some(dp), Some(count)) => {
            let dp = positive_int("layout", "dp", dp)?;
            if model_parallel * dp as u128 != count as u128 {
                return Err(format!(
                    "[layout] tp * pp * dp * cp = {tp} * {pp} * {dp} * {cp} = {} but [cluster] count = {count}: they must be equal",
                    model_parallel * dp as u128
                ));
            }
            dp
        }
        (Some(dp), None) => positive_int("layout", "dp", dp)?,
        (None, Some(count)) => {
            if count == 0 || !(count as u128).is_multiple_of(model_parallel) {
                return Err(format!(
                    "[cluster] count = {count} is not a multiple of tp * pp * cp = {model_parallel}: dp would not be whole"
                ));
            }
            u32::try_from(count as u128 / model_parallel)
                .map_err(|_| format!("[cluster] count = {count}: dp would exceed 2^32"))?
        }
        (None, None) => return Err("[cluster] count is missing (or give [layout] dp)".to_string()),
    };
    let defaults = &stack.defaults;
    let microbatch = match (l.microbatch, defaults.microbatch) {
        (Some(m), _) => positive_int("layout", "microbatch", m)?,
        (None, MicrobatchDefault::Sequences(m)) => m,
        // The whole per-replica batch, where dp divides the batch (else the check below says so).
        (None, MicrobatchDefault::Named(_)) => (training.global_batch / dp).max(1),
    };
    // Sequence parallelism is a no-op without tensor parallelism; by default it is on wherever
    // the stack has it and tensor parallelism is used.
    let sequence_parallel = l
        .sequence_parallel
        .unwrap_or(defaults.sequence_parallel && tp > 1)
        && tp > 1;
    let etp = match l.etp {
        Some(e) => positive_int("layout", "etp", e)?,
        None if (dp as u64 * cp as u64).is_multiple_of(ep as u64) => tp,
        None => 1,
    };
    let layout = Layout {
        tp,
        pp,
        dp,
        cp,
        ep,
        etp,
        microbatch,
        interleave: positive_int(
            "layout",
            "interleave",
            l.interleave.unwrap_or(defaults.interleave),
        )?,
        recompute: l.recompute.unwrap_or(defaults.recompute),
        sequence_parallel,
        // TP overlap needs sequence parallelism; by default on wherever the stack can.
        tp_overlap: l.tp_overlap.unwrap_or(defaults.tp_overlap) && sequence_parallel,
        zero: l.zero.unwrap_or(defaults.zero),
        recompute_layers: match l.recompute_layers {
            Some(n) => positive_int("layout", "recompute_layers", n)?,
            None => 0,
        },
        offload_layers: l.offload_layers.unwrap_or(0),
        hybrid_shard: l.hybrid_shard.unwrap_or(training.stack.hybrid_shard),
    };
    if let Some(v) = check_layout(model, training, &layout) {
        return Err(format!(
            "[layout] {}: {}",
            layout_values(&layout, model, training),
            v.describe()
        ));
    }
    if let Some(v) = check_stack(&training.stack, model, &layout, training.dtype) {
        let (key, lacks) = v.describe();
        let value = match key {
            "tp" => layout.tp.to_string(),
            "pp" => layout.pp.to_string(),
            "cp" => layout.cp.to_string(),
            "ep" => layout.ep.to_string(),
            "interleave" => layout.interleave.to_string(),
            "sequence_parallel" => layout.sequence_parallel.to_string(),
            "tp_overlap" => layout.tp_overlap.to_string(),
            "zero" => layout.zero.to_string(),
            "offload_layers" => layout.offload_layers.to_string(),
            "hybrid_shard" => layout.hybrid_shard.to_string(),
            "recompute" => format!("\"{}\"", layout.recompute.name()),
            _ => format!("\"{}\"", training.dtype.name()),
        };
        let given = l.given(key);
        return Err(format!(
            "[layout] {key} = {value}{}: stack `{}` ({}) {lacks}; set [training] stack to one that has it (`clustersweep catalog --stacks`){}",
            if given { "" } else { " (the stack's default)" },
            stack.id,
            stack.name,
            if given { ", or change the key" } else { ", or set the key" }
        ));
    }
    Ok(layout)
}

impl LayoutSection {
    /// True when the file sets `key`.
    pub fn given(&self, key: &str) -> bool {
        match key {
            "tp" => self.tp.is_some(),
            "pp" => self.pp.is_some(),
            "dp" => self.dp.is_some(),
            "cp" => self.cp.is_some(),
            "ep" => self.ep.is_some(),
            "etp" => self.etp.is_some(),
            "microbatch" => self.microbatch.is_some(),
            "interleave" => self.interleave.is_some(),
            "recompute" => self.recompute.is_some(),
            "sequence_parallel" => self.sequence_parallel.is_some(),
            "tp_overlap" => self.tp_overlap.is_some(),
            "zero" => self.zero.is_some(),
            "recompute_layers" => self.recompute_layers.is_some(),
            "offload_layers" => self.offload_layers.is_some(),
            "hybrid_shard" => self.hybrid_shard.is_some(),
            _ => false,
        }
    }
}

/// The layout's numbers that the cross-checks look at, for error messages.
fn layout_values(l: &Layout, m: &Transformer, t: &Training) -> String {
    format!(
        "tp = {}, pp = {}, dp = {}, cp = {}, ep = {}, etp = {}, microbatch = {}, interleave = {}, zero = {} \
         (model: {} layers, {} heads, {} kv_heads, ffn {}, seq_len {}, {} experts; global_batch {})",
        l.tp,
        l.pp,
        l.dp,
        l.cp,
        l.ep,
        l.etp,
        l.microbatch,
        l.interleave,
        l.zero,
        m.layers,
        m.heads,
        m.kv_heads,
        m.ffn,
        m.seq_len,
        m.experts,
        t.global_batch
    )
}

/// An axis as written: a list, or a range `{ from, to, step }` (arithmetic) or
/// `{ from, to, factor }` (geometric).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum AxisSpec {
    List(Vec<u64>),
    Range(AxisRange),
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AxisRange {
    pub from: u64,
    pub to: u64,
    pub step: Option<u64>,
    pub factor: Option<u64>,
}

/// `[search]` as written. Every key is optional; see [`crate::engine::search::SearchSpace::resolve`] for the defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSection {
    pub accelerators: Option<Vec<String>>,
    /// Software stacks (catalog ids); default: `[training] stack`, else megatron-core-2025.
    pub stacks: Option<Vec<String>>,
    pub counts: Option<AxisSpec>,
    pub tp: Option<AxisSpec>,
    pub pp: Option<AxisSpec>,
    pub cp: Option<AxisSpec>,
    pub ep: Option<AxisSpec>,
    pub microbatch: Option<AxisSpec>,
    pub interleave: Option<AxisSpec>,
    pub recompute: Option<Vec<Recompute>>,
    pub sequence_parallel: Option<Vec<bool>>,
    pub zero: Option<AxisSpec>,
    /// With full recomputation, layers per stage that recompute (0 = all); default [0].
    pub recompute_layers: Option<AxisSpec>,
    /// Layers per stage offloaded to host memory; default [0].
    pub offload_layers: Option<AxisSpec>,
    /// Global batches in sequences, tried as an axis.
    pub global_batch: Option<AxisSpec>,
    /// Or a bound in tokens: each layout takes the largest batch under it that it can split.
    pub global_batch_tokens: Option<f64>,
    /// The network, as axes: scale-up domain sizes (each accelerator takes those it ships in),
    /// NIC rates per accelerator (Gb/s), full-bisection pod sizes, the oversubscription of the
    /// tier above a pod, and fabric topologies. Each accelerator is tried on every network the
    /// lists combine to; a key left out keeps the `[cluster]` (else catalog) value.
    pub scale_up_domain: Option<Vec<u32>>,
    pub scale_out_gbps: Option<Vec<f64>>,
    pub pod_size: Option<Vec<f64>>,
    pub pod_oversubscription: Option<Vec<f64>>,
    pub topology: Option<Vec<Topology>>,
}

impl SearchSection {
    /// Whether any network key is listed as an axis.
    pub fn has_network_axes(&self) -> bool {
        self.scale_up_domain.is_some()
            || self.scale_out_gbps.is_some()
            || self.pod_size.is_some()
            || self.pod_oversubscription.is_some()
            || self.topology.is_some()
    }

    /// Whether the scenario lists `key` (`pod_oversubscription`) as an axis itself.
    pub fn lists(&self, key: &str) -> bool {
        section_gives(self, key)
    }
}

/// `[constraints]` as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConstraintsSection {
    /// Capital (pricing = "capex") or rental (pricing = "rental") spend, USD.
    pub budget_usd: Option<f64>,
    /// Facility power of the cluster, PUE included, MW.
    pub power_mw: Option<f64>,
    /// Wall-clock days to train the token budget.
    pub max_days: Option<f64>,
    pub max_accelerators: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moe_presets_match_their_published_parameter_counts() {
        // (preset, total B, active B): DeepSeek-V3 report Sec. 4.2 (without MTP), Kimi K2 report,
        // Qwen3 report, gpt-oss model card, Llama 4 and Mixtral model cards, Grok-1 release.
        let catalog = Catalog::builtin();
        for (id, total, active) in [
            ("deepseek-v3", 671.0, 37.0),
            ("kimi-k2", 1040.0, 32.6),
            ("qwen3-235b-a22b", 235.0, 22.0),
            ("qwen3-30b-a3b", 30.5, 3.3),
            // The model card's 5.1B active leaves out the 0.58B input embedding; this counts it.
            ("gpt-oss-120b", 116.8, 5.1 + 0.58),
            ("llama4-maverick", 400.0, 17.0),
            ("grok-1", 314.0, 0.0),
            ("mixtral-8x7b", 46.7, 12.9),
        ] {
            let section = ModelSection {
                preset: Some(id.into()),
                ..Default::default()
            };
            let (_, m) = resolve_model(&section, &catalog).unwrap();
            let t = total_params(&m) / 1e9;
            assert!(
                (t / total - 1.0).abs() < 0.015,
                "{id}: {t:.1}B total, published {total}B"
            );
            if active > 0.0 {
                let a = crate::model::flops::active_params(&m) / 1e9;
                assert!(
                    (a / active - 1.0).abs() < 0.03,
                    "{id}: {a:.2}B active, published {active}B"
                );
            }
        }
    }

    #[test]
    fn latent_attention_needs_its_ranks_and_takes_no_head_dim() {
        let catalog = Catalog::builtin();
        let mut section = ModelSection {
            preset: Some("deepseek-v3".into()),
            head_dim: Some(56),
            ..Default::default()
        };
        assert!(resolve_model(&section, &catalog)
            .unwrap_err()
            .contains("qk_nope_head_dim"));
        section.head_dim = None;
        section.sliding_window_layers = Some(3);
        assert!(resolve_model(&section, &catalog)
            .unwrap_err()
            .contains("sliding_window"));
        section.sliding_window_layers = None;
        let (_, m) = resolve_model(&section, &catalog).unwrap();
        assert_eq!(
            (m.qk_head_dim(), m.value_head_dim(), m.kv_heads),
            (192.0, 128.0, 128)
        );
    }

    fn resolve(text: &str) -> Result<Scenario, Error> {
        ScenarioFile::parse(text, "t.toml")?.resolve(&Catalog::builtin(), "t.toml")
    }

    #[test]
    fn default_scenario_resolves() {
        let s = resolve(DEFAULT_SCENARIO).unwrap();
        assert_eq!(s.layout.dp, 64);
        assert_eq!(s.model_name, "llama3-70b");
        assert_eq!(s.layout.accelerators(), 2048);
    }

    #[test]
    fn unknown_key_names_key_and_section() {
        let msg = resolve("[layout]\ntpp = 2\n").unwrap_err().to_string();
        assert!(msg.contains("`tpp`") && msg.contains("[layout]"), "{msg}");
    }

    #[test]
    fn unknown_section_is_named() {
        let msg = resolve("[clusterr]\ncount = 2\n").unwrap_err().to_string();
        assert!(msg.contains("clusterr"), "{msg}");
    }

    #[test]
    fn bad_enum_value_names_the_key_and_choices() {
        let msg = resolve("[model]\npreset = \"llama3-8b\"\nffn_kind = \"relu\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("[model] ffn_kind") && msg.contains("swiglu"),
            "{msg}"
        );
    }

    #[test]
    fn count_mismatch_is_explained() {
        let text = DEFAULT_SCENARIO.replace("cp = 2 ", "dp = 3\ncp = 2 ");
        let msg = resolve(&text).unwrap_err().to_string();
        assert!(
            msg.contains("count = 2048") && msg.contains("must be equal"),
            "{msg}"
        );
    }

    #[test]
    fn tp_that_does_not_divide_heads_is_refused() {
        let text = DEFAULT_SCENARIO
            .replace("tp = 4", "tp = 3")
            .replace("count = 2048", "count = 1536");
        let msg = resolve(&text).unwrap_err().to_string();
        assert!(msg.contains("tp must divide the attention heads"), "{msg}");
    }

    #[test]
    fn unsupported_dtype_lists_the_supported_ones() {
        let text = DEFAULT_SCENARIO
            .replace("\"h100-sxm\"", "\"a100-80gb\"")
            .replace("\"bf16\"", "\"fp8\"");
        let msg = resolve(&text).unwrap_err().to_string();
        assert!(msg.contains("fp8") && msg.contains("bf16"), "{msg}");
    }

    #[test]
    fn unknown_preset_and_accelerator_list_the_known_ones() {
        let msg = resolve("[model]\npreset = \"gpt5\"\n").unwrap_err().to_string();
        assert!(msg.contains("gpt5") && msg.contains("llama3-70b"), "{msg}");
        let text = DEFAULT_SCENARIO.replace("\"h100-sxm\"", "\"h1000\"");
        let msg = resolve(&text).unwrap_err().to_string();
        assert!(msg.contains("h1000") && msg.contains("gb200"), "{msg}");
    }

    #[test]
    fn explicit_keys_override_the_preset() {
        let text = DEFAULT_SCENARIO.replace(
            "preset = \"llama3-70b\"",
            "preset = \"llama3-70b\"\nseq_len = 4096",
        );
        let s = resolve(&text).unwrap();
        assert_eq!(s.model.seq_len, 4096);
        assert_eq!(s.model_name, "llama3-70b (modified)");
    }

    #[test]
    fn cluster_overrides_apply() {
        let text = DEFAULT_SCENARIO.replace(
            "count = 2048",
            "count = 2048\nscale_out_gbps = 200\nscale_up_domain = 72",
        );
        let s = resolve(&text).unwrap();
        assert_eq!(s.hardware.scale_out_bytes_per_s, 25e9);
        assert_eq!(s.hardware.scale_up_domain, 72);
    }

    #[test]
    fn rental_without_a_price_names_the_fix() {
        let text = DEFAULT_SCENARIO.replace("\"h100-sxm\"", "\"gb300\"");
        let msg = resolve(&text).unwrap_err().to_string();
        assert!(msg.contains("price_per_hour_usd"), "{msg}");
    }

    #[test]
    fn zero_degree_is_refused_with_the_key() {
        let msg = resolve(&DEFAULT_SCENARIO.replace("tp = 4", "tp = 0"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[layout] tp = 0"), "{msg}");
    }

    #[test]
    fn negative_value_names_key_not_a_panic() {
        let msg = resolve(&DEFAULT_SCENARIO.replace("tp = 4", "tp = -4"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[layout] tp"), "{msg}");
    }

    #[test]
    fn moe_imbalance_below_balance_names_the_key() {
        for v in ["0.5", "nan"] {
            let text =
                DEFAULT_SCENARIO.replace("tokens = 15e12", &format!("tokens = 15e12\nmoe_imbalance = {v}"));
            let msg = resolve(&text).unwrap_err().to_string();
            assert!(msg.contains("[training] moe_imbalance"), "{msg}");
        }
        let text = DEFAULT_SCENARIO.replace("tokens = 15e12", "tokens = 15e12\nmoe_imbalance = 1.3");
        assert_eq!(resolve(&text).unwrap().training.moe_imbalance, 1.3);
    }

    /// Regression (found by the fuzz target): 1e300 tokens overflowed every objective, so a
    /// sweep counted its layouts valid and ranked none.
    #[test]
    fn a_token_budget_past_1e20_is_refused_naming_the_key() {
        for v in ["1e300", "1e21", "0", "-5"] {
            let text = DEFAULT_SCENARIO.replace("tokens = 15e12", &format!("tokens = {v}"));
            let msg = resolve(&text).unwrap_err().to_string();
            assert!(
                msg.contains("[training] tokens") && msg.contains("at most 1e20"),
                "{msg}"
            );
        }
        let text = DEFAULT_SCENARIO.replace("tokens = 15e12", "tokens = 1e20");
        assert_eq!(resolve(&text).unwrap().training.tokens, 1e20);
    }

    #[test]
    fn tokens_default_to_chinchilla() {
        let text = DEFAULT_SCENARIO.replace("tokens = 15e12", "");
        let s = resolve(&text).unwrap();
        assert!((s.training.tokens / total_params(&s.model) - 20.0).abs() < 1e-9);
    }
}
