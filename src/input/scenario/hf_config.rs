//! A Hugging Face `config.json` read as `[model]` keys (`[model] hf_config = "config.json"`, or
//! `estimate --hf-config FILE`). The file is local; nothing is downloaded.
//!
//! Field names are those of the `transformers` configuration classes of each family
//! (`LlamaConfig`, `MistralConfig`, `MixtralConfig`, `Qwen2Config`, `Qwen3Config`,
//! `Qwen3MoeConfig`, `DeepseekV2Config`/`DeepseekV3Config`, `GptOssConfig`, `Gemma2Config`,
//! `Gemma3TextConfig`, `Llama4TextConfig`). Every family read here has a gated feed-forward
//! (SwiGLU; Gemma's GeGLU has the same three matrices and is priced as one).
//!
//! What is not modelled, and so not read: biases (GPT-OSS, Qwen2's QKV), attention sinks,
//! QK-norms and other per-head norms (a few thousand parameters a layer), Llama 4's chunked
//! attention (8,192-token chunks: no saving at 8,192-token sequences), vision towers.

use super::ModelSection;
use serde_json::Value;

/// The families read, by `model_type`.
pub const MODEL_TYPES: [&str; 14] = [
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "qwen3_moe",
    "deepseek_v2",
    "deepseek_v3",
    "gpt_oss",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "llama4",
    "llama4_text",
];

/// The sequence length taken when a config gives only its long-context limit
/// (`max_position_embeddings` of 32K-1M tokens is what the model can read after context
/// extension, not what it pre-trains on): 8,192, Llama 3's pre-training length (arXiv 2407.21783
/// Sec. 3.4.1). `[model] seq_len` sets the length trained at.
pub const DEFAULT_SEQ_LEN_CAP: u32 = 8192;

/// The `[model]` keys a config gives; `name` is the config's `_name_or_path` where it has one.
pub fn model_section(text: &str) -> Result<ModelSection, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not a JSON config: {e}"))?;
    let top_type = string(&root, "model_type")?;
    // Multimodal configs (Llama 4, Gemma 3) keep the language model in `text_config`.
    let (config, model_type) = match root.get("text_config") {
        Some(text_config) if text_config.is_object() => {
            let inner = text_config
                .get("model_type")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{top_type}_text"));
            (text_config, inner)
        }
        _ => (&root, top_type),
    };
    if !MODEL_TYPES.contains(&model_type.as_str()) {
        return Err(format!(
            "model_type = \"{model_type}\" is not a family clustersweep reads{} (known: {}); give the [model] keys instead",
            crate::error::did_you_mean(&model_type, MODEL_TYPES),
            MODEL_TYPES.join(", ")
        ));
    }
    let c = Fields(config);
    let layers = c.need_u32("num_hidden_layers")?;
    let heads = c.need_u32("num_attention_heads")?;
    let mut m = ModelSection {
        name: root
            .get("_name_or_path")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        layers: Some(layers),
        hidden: Some(c.need_u32("hidden_size")?),
        heads: Some(heads),
        kv_heads: Some(c.u32("num_key_value_heads")?.unwrap_or(heads)),
        head_dim: c.u32("head_dim")?,
        ffn: Some(c.need_u32("intermediate_size")?),
        ffn_kind: Some(crate::model::FfnKind::Swiglu),
        vocab: Some(c.need_u32("vocab_size")?),
        seq_len: Some(seq_len(&c)?),
        // Gemma ties its embeddings unless told otherwise; the others do not.
        tied_embeddings: Some(
            c.bool("tie_word_embeddings")?
                .or(root.get("tie_word_embeddings").and_then(Value::as_bool))
                .unwrap_or(model_type.starts_with("gemma")),
        ),
        ..ModelSection::default()
    };
    match model_type.as_str() {
        "llama" | "qwen2" | "qwen3" => sliding_from_flag(&c, &mut m, layers)?,
        "mistral" => windowed_everywhere(&c, &mut m, layers)?,
        "mixtral" => {
            windowed_everywhere(&c, &mut m, layers)?;
            m.experts = Some(c.need_u32("num_local_experts")?);
            m.experts_per_token = Some(c.need_u32("num_experts_per_tok")?);
            m.expert_ffn = m.ffn;
        }
        "qwen3_moe" => {
            sliding_from_flag(&c, &mut m, layers)?;
            m.experts = Some(c.need_u32("num_experts")?);
            m.experts_per_token = Some(c.need_u32("num_experts_per_tok")?);
            m.expert_ffn = Some(c.need_u32("moe_intermediate_size")?);
            // A layer is MoE where (i + 1) % decoder_sparse_step == 0 and it is not listed in
            // mlp_only_layers (Qwen3MoeDecoderLayer).
            let step = c.u32("decoder_sparse_step")?.unwrap_or(1).max(1);
            let mut mlp_only = c.u32_list("mlp_only_layers")?;
            mlp_only.retain(|&i| i < layers && (i + 1) % step == 0);
            mlp_only.sort_unstable();
            mlp_only.dedup();
            // Counted, not looped: a config may claim billions of layers (refused later).
            let moe = layers / step - mlp_only.len() as u32;
            // Wherever the dense layers sit, the model counts them (as for Llama 4).
            m.dense_layers = Some(layers - moe);
        }
        "deepseek_v2" | "deepseek_v3" => {
            m.experts = Some(c.need_u32("n_routed_experts")?);
            m.experts_per_token = Some(c.need_u32("num_experts_per_tok")?);
            m.expert_ffn = Some(c.need_u32("moe_intermediate_size")?);
            m.shared_experts = Some(c.u32("n_shared_experts")?.unwrap_or(0));
            m.dense_layers = Some(c.u32("first_k_dense_replace")?.unwrap_or(0));
            if c.u32("moe_layer_freq")?.unwrap_or(1) != 1 {
                return Err(
                    "moe_layer_freq other than 1 (MoE on every layer after the first dense ones) is not read: give dense_layers".into(),
                );
            }
            m.attention = Some("mla".into());
            // DeepSeek-V2-Lite has no query compression (q_lora_rank null).
            m.q_lora_rank = c.u32("q_lora_rank")?;
            m.kv_lora_rank = Some(c.need_u32("kv_lora_rank")?);
            m.qk_nope_head_dim = Some(c.need_u32("qk_nope_head_dim")?);
            m.qk_rope_head_dim = Some(c.need_u32("qk_rope_head_dim")?);
            m.v_head_dim = Some(c.need_u32("v_head_dim")?);
            m.head_dim = None;
            m.kv_heads = None;
            m.mtp_layers = c.u32("num_nextn_predict_layers")?.filter(|&n| n > 0);
            // Group-limited routing; "greedy" routing (V2-Lite) ignores the groups.
            let grouped = c.str("topk_method")?.is_none_or(|t| t != "greedy");
            if grouped {
                m.n_group = c.u32("n_group")?.filter(|&n| n > 1);
                m.topk_group = m.n_group.and(c.u32("topk_group")?);
            }
        }
        "gpt_oss" => {
            m.experts = Some(c.need_u32("num_local_experts")?);
            m.experts_per_token = Some(match c.u32("num_experts_per_tok")? {
                Some(k) => k,
                None => c.need_u32("experts_per_token")?,
            });
            m.expert_ffn = m.ffn;
            windowed_by_layer_types(&c, &mut m, layers, None)?;
        }
        // Gemma 2 alternates local and global layers, local first (Gemma2DecoderLayer:
        // `is_sliding = not bool(layer_idx % 2)`).
        "gemma2" => windowed_by_layer_types(&c, &mut m, layers, Some(2))?,
        // Gemma 3: five local layers to one global (`sliding_window_pattern` 6).
        "gemma3" | "gemma3_text" => {
            let pattern = c.u32("sliding_window_pattern")?.unwrap_or(6);
            windowed_by_layer_types(&c, &mut m, layers, Some(pattern))?
        }
        "llama4" | "llama4_text" => {
            m.experts = Some(c.need_u32("num_local_experts")?);
            m.experts_per_token = Some(c.need_u32("num_experts_per_tok")?);
            m.expert_ffn = m.ffn;
            // Dense layers are wider (intermediate_size_mlp); every MoE layer has one shared
            // expert beside the routed ones (Llama4TextMoe.shared_expert).
            m.ffn = Some(c.u32("intermediate_size_mlp")?.unwrap_or(m.ffn.unwrap_or(0)));
            m.shared_experts = Some(1);
            let moe_layers = match c.get("moe_layers").filter(|v| !v.is_null()) {
                Some(_) => {
                    let mut listed = c.u32_list("moe_layers")?;
                    if let Some(&past) = listed.iter().find(|&&i| i >= layers) {
                        return Err(format!(
                            "moe_layers lists layer {past} but num_hidden_layers = {layers}"
                        ));
                    }
                    listed.sort_unstable();
                    listed.dedup();
                    listed.len() as u32
                }
                // Layers i with (i + 1) % step == 0 (Llama4TextConfig).
                None => layers / c.u32("interleave_moe_layer_step")?.unwrap_or(1).max(1),
            };
            // Interleaved placement: the model counts dense layers, not where they sit.
            m.dense_layers = Some(layers - moe_layers);
        }
        _ => unreachable!("MODEL_TYPES lists every family matched above"),
    }
    Ok(m)
}

/// The pre-extension context: `rope_scaling.original_max_position_embeddings` (Llama 3.1,
/// DeepSeek-V3, GPT-OSS), else `initial_context_length` (GPT-OSS), else
/// `max_position_embeddings` up to [`DEFAULT_SEQ_LEN_CAP`].
fn seq_len(c: &Fields) -> Result<u32, String> {
    if let Some(original) = c
        .get("rope_scaling")
        .and_then(|r| r.get("original_max_position_embeddings"))
        .filter(|v| !v.is_null())
    {
        return as_u32("rope_scaling.original_max_position_embeddings", original);
    }
    if let Some(initial) = c.u32("initial_context_length")? {
        return Ok(initial);
    }
    Ok(c.u32("max_position_embeddings")?
        .unwrap_or(DEFAULT_SEQ_LEN_CAP)
        .min(DEFAULT_SEQ_LEN_CAP))
}

/// Mistral: one window on every layer where `sliding_window` is set (null: none).
fn windowed_everywhere(c: &Fields, m: &mut ModelSection, layers: u32) -> Result<(), String> {
    if let Some(window) = c.u32("sliding_window")? {
        m.sliding_window = Some(window);
        m.sliding_window_layers = Some(layers);
    }
    Ok(())
}

/// Qwen2/Qwen3 (and Llama configs that carry the keys): windows only with
/// `use_sliding_window`, on the layers from `max_window_layers` on, unless `layer_types` says
/// which.
fn sliding_from_flag(c: &Fields, m: &mut ModelSection, layers: u32) -> Result<(), String> {
    if !c.bool("use_sliding_window")?.unwrap_or(false) {
        return Ok(());
    }
    let Some(window) = c.u32("sliding_window")? else {
        return Ok(());
    };
    let sliding = match layer_types_sliding(c, layers)? {
        Some(n) => n,
        None => layers.saturating_sub(c.u32("max_window_layers")?.unwrap_or(0)),
    };
    if sliding > 0 {
        m.sliding_window = Some(window);
        m.sliding_window_layers = Some(sliding);
    }
    Ok(())
}

/// Windows on the layers `layer_types` marks "sliding_attention"; without the list, on all
/// but every `pattern`-th layer (`None`: the list is required).
fn windowed_by_layer_types(
    c: &Fields,
    m: &mut ModelSection,
    layers: u32,
    pattern: Option<u32>,
) -> Result<(), String> {
    let Some(window) = c.u32("sliding_window")? else {
        return Ok(());
    };
    let sliding = match (layer_types_sliding(c, layers)?, pattern) {
        (Some(n), _) => n,
        (None, Some(p)) => layers - layers / p.max(1),
        (None, None) => {
            return Err("sliding_window is set but layer_types is missing: give sliding_window_layers".into())
        }
    };
    if sliding > 0 {
        m.sliding_window = Some(window);
        m.sliding_window_layers = Some(sliding);
    }
    Ok(())
}

/// How many layers `layer_types` marks "sliding_attention", where the config lists them.
fn layer_types_sliding(c: &Fields, layers: u32) -> Result<Option<u32>, String> {
    let Some(list) = c.get("layer_types").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let list = list
        .as_array()
        .ok_or("layer_types: expected a list of \"sliding_attention\" / \"full_attention\"")?;
    if list.len() != layers as usize {
        return Err(format!(
            "layer_types lists {} layers but num_hidden_layers = {layers}",
            list.len()
        ));
    }
    Ok(Some(
        list.iter()
            .filter(|t| t.as_str() == Some("sliding_attention"))
            .count() as u32,
    ))
}

/// One config object's fields, with messages naming the field.
struct Fields<'a>(&'a Value);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A whole number where the config has one (null counts as absent).
    fn u32(&self, key: &str) -> Result<Option<u32>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => as_u32(key, v).map(Some),
        }
    }

    fn need_u32(&self, key: &str) -> Result<u32, String> {
        self.u32(key)?.ok_or_else(|| format!("{key} is missing"))
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(format!("{key} = {v}: expected true or false")),
        }
    }

    fn str(&self, key: &str) -> Result<Option<&str>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(format!("{key} = {v}: expected a string")),
        }
    }

    fn u32_list(&self, key: &str) -> Result<Vec<u32>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::Array(items)) => items.iter().map(|v| as_u32(key, v)).collect(),
            Some(v) => Err(format!("{key} = {v}: expected a list of layer indices")),
        }
    }
}

fn string(v: &Value, key: &str) -> Result<String, String> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{key} = {other}: expected a string")),
        None => Err(format!("{key} is missing: is this a Hugging Face config.json?")),
    }
}

fn as_u32(key: &str, v: &Value) -> Result<u32, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{key} = {v}: expected a whole number below 2^32"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::catalog::Catalog;
    use crate::input::scenario::resolve_model;
    use crate::model::flops::{active_params, total_params};
    use crate::model::Transformer;

    /// Abridged from the released config.json files (the fields the families use, and a few
    /// they do not, as the real files carry).
    const LLAMA_31_405B: &str = r#"{"_name_or_path": "meta-llama/Llama-3.1-405B", "architectures": ["LlamaForCausalLM"],
        "model_type": "llama", "hidden_act": "silu", "hidden_size": 16384, "intermediate_size": 53248,
        "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8, "vocab_size": 128256,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "tie_word_embeddings": false, "torch_dtype": "bfloat16"}"#;
    const MIXTRAL_8X7B: &str = r#"{"model_type": "mixtral", "hidden_act": "silu", "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000, "max_position_embeddings": 32768,
        "sliding_window": null, "rope_theta": 1000000.0, "tie_word_embeddings": false}"#;
    const DEEPSEEK_V3: &str = r#"{"model_type": "deepseek_v3", "hidden_size": 7168, "intermediate_size": 18432,
        "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_nextn_predict_layers": 1,
        "num_attention_heads": 128, "num_key_value_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256,
        "routed_scaling_factor": 2.5, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
        "v_head_dim": 128, "qk_nope_head_dim": 128, "topk_method": "noaux_tc", "n_group": 8, "topk_group": 4,
        "num_experts_per_tok": 8, "moe_layer_freq": 1, "first_k_dense_replace": 3, "vocab_size": 129280,
        "max_position_embeddings": 163840, "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40,
        "mscale": 1.0, "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "type": "yarn"},
        "tie_word_embeddings": false}"#;
    const QWEN3_235B: &str = r#"{"model_type": "qwen3_moe", "hidden_size": 4096, "intermediate_size": 12288,
        "moe_intermediate_size": 1536, "num_hidden_layers": 94, "num_attention_heads": 64, "num_key_value_heads": 4,
        "head_dim": 128, "num_experts": 128, "num_experts_per_tok": 8, "decoder_sparse_step": 1,
        "mlp_only_layers": [], "norm_topk_prob": true, "vocab_size": 151936, "max_position_embeddings": 40960,
        "use_sliding_window": false, "sliding_window": null, "max_window_layers": 94, "tie_word_embeddings": false}"#;
    const GPT_OSS_120B: &str = r#"{"model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
        "num_hidden_layers": 36, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
        "num_local_experts": 128, "num_experts_per_tok": 4, "experts_per_token": 4, "vocab_size": 201088,
        "sliding_window": 128, "initial_context_length": 4096, "max_position_embeddings": 131072,
        "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
                         "original_max_position_embeddings": 4096, "rope_type": "yarn", "truncate": false},
        "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention",
            "sliding_attention", "full_attention", "sliding_attention", "full_attention", "sliding_attention",
            "full_attention", "sliding_attention", "full_attention", "sliding_attention", "full_attention",
            "sliding_attention", "full_attention", "sliding_attention", "full_attention", "sliding_attention",
            "full_attention", "sliding_attention", "full_attention", "sliding_attention", "full_attention",
            "sliding_attention", "full_attention", "sliding_attention", "full_attention", "sliding_attention",
            "full_attention", "sliding_attention", "full_attention", "sliding_attention", "full_attention",
            "sliding_attention", "full_attention"],
        "tie_word_embeddings": false}"#;
    const LLAMA4_MAVERICK: &str = r#"{"model_type": "llama4", "architectures": ["Llama4ForConditionalGeneration"],
        "text_config": {"model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
            "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
            "num_key_value_heads": 8, "head_dim": 128, "num_local_experts": 128, "num_experts_per_tok": 1,
            "interleave_moe_layer_step": 2, "vocab_size": 202048, "max_position_embeddings": 1048576,
            "attention_chunk_size": 8192, "use_qk_norm": false, "rope_scaling": null},
        "vision_config": {"hidden_size": 1408, "num_hidden_layers": 34},
        "tie_word_embeddings": false}"#;
    const GEMMA2_27B: &str = r#"{"model_type": "gemma2", "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 4608, "intermediate_size": 36864, "num_hidden_layers": 46, "num_attention_heads": 32,
        "num_key_value_heads": 16, "head_dim": 128, "query_pre_attn_scalar": 144, "sliding_window": 4096,
        "vocab_size": 256000, "max_position_embeddings": 8192, "final_logit_softcapping": 30.0}"#;
    const GEMMA3_27B: &str = r#"{"model_type": "gemma3", "text_config": {"model_type": "gemma3_text",
        "hidden_size": 5376, "intermediate_size": 21504, "num_hidden_layers": 62, "num_attention_heads": 32,
        "num_key_value_heads": 16, "head_dim": 128, "sliding_window": 1024, "sliding_window_pattern": 6,
        "vocab_size": 262208, "max_position_embeddings": 131072, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}},
        "vision_config": {"model_type": "siglip_vision_model"}}"#;

    fn model_of(config: &str) -> Transformer {
        let section = model_section(config).unwrap();
        resolve_model(&section, &Catalog::builtin()).unwrap().1
    }

    /// Within 1 % of the published figure, or within its rounding (half a unit of its last
    /// digit: "37B" is 36.5-37.5B) where that is wider.
    fn assert_matches_published(what: &str, got: f64, published: f64, last_digit: f64) {
        let tolerance = (0.01 * published).max(0.5 * last_digit);
        assert!(
            (got - published).abs() <= tolerance,
            "{what}: {:.3}B vs published {:.3}B (tolerance {:.3}B)",
            got / 1e9,
            published / 1e9,
            tolerance / 1e9
        );
    }

    /// Parameter counts against the published figures (biases, sinks and per-head norms are
    /// not modelled). Active counts follow each source's convention: gpt-oss's model card
    /// (Table 1) counts the output layer but not the input embedding, a lookup that computes
    /// nothing, and DeepSeek-V3's 37B does the same (37.55B with it, 36.62B without); the
    /// others count both. `active_params` counts both (what `estimate` reports).
    #[test]
    fn configs_give_the_published_parameter_counts() {
        for (config, total, active, last_digit, input_embedding_counted, source) in [
            (LLAMA_31_405B, 405e9, 405e9, 1e9, true, "Llama 3 Herd, Table 3"),
            (
                MIXTRAL_8X7B,
                46.7e9,
                12.9e9,
                0.1e9,
                true,
                "Mixtral model card (46.7B, 12.9B)",
            ),
            (
                DEEPSEEK_V3,
                671e9,
                37e9,
                1e9,
                false,
                "DeepSeek-V3 report, without the MTP module",
            ),
            (QWEN3_235B, 235e9, 22e9, 1e9, true, "Qwen3 report, Table 2"),
            (
                GPT_OSS_120B,
                116.83e9,
                5.13e9,
                0.01e9,
                false,
                "gpt-oss model card, Table 1",
            ),
            (LLAMA4_MAVERICK, 400e9, 17e9, 1e9, true, "Llama 4 model card"),
            (
                GEMMA2_27B,
                27.23e9,
                27.23e9,
                0.01e9,
                true,
                "Gemma 2 report, Table 2 (1.18B embedding + 26.05B)",
            ),
            (
                GEMMA3_27B,
                27.0e9,
                27.0e9,
                0.1e9,
                true,
                "Gemma 3 report, Table 1 (1.42B embedding + 25.6B, no vision)",
            ),
        ] {
            let m = model_of(config);
            let input_embedding = m.vocab as f64 * m.hidden as f64;
            let active_counted = active_params(&m)
                - if input_embedding_counted {
                    0.0
                } else {
                    input_embedding
                };
            assert_matches_published(&format!("{source} total"), total_params(&m), total, last_digit);
            assert_matches_published(&format!("{source} active"), active_counted, active, last_digit);
        }
    }

    /// Where a preset exists, the config gives the same shape (the preset's unused dense width
    /// and its training length aside).
    #[test]
    fn configs_match_their_presets() {
        let catalog = Catalog::builtin();
        for (config, preset) in [
            (MIXTRAL_8X7B, "mixtral-8x7b"),
            (DEEPSEEK_V3, "deepseek-v3"),
            (QWEN3_235B, "qwen3-235b-a22b"),
            (GPT_OSS_120B, "gpt-oss-120b"),
            (LLAMA4_MAVERICK, "llama4-maverick"),
        ] {
            let section = crate::input::scenario::ModelSection {
                preset: Some(preset.into()),
                ..Default::default()
            };
            let expected = resolve_model(&section, &catalog).unwrap().1;
            let mut got = model_of(config);
            got.seq_len = expected.seq_len;
            if expected.dense_layers == 0 {
                got.ffn = expected.ffn;
            }
            assert_eq!(got, expected, "{preset}");
        }
    }

    #[test]
    fn sequence_length_is_the_pre_extension_context() {
        assert_eq!(model_of(LLAMA_31_405B).seq_len, 8192);
        assert_eq!(model_of(DEEPSEEK_V3).seq_len, 4096);
        assert_eq!(model_of(GPT_OSS_120B).seq_len, 4096);
        // Only a long-context limit: the cap.
        assert_eq!(model_of(MIXTRAL_8X7B).seq_len, DEFAULT_SEQ_LEN_CAP);
        assert_eq!(model_of(LLAMA4_MAVERICK).seq_len, DEFAULT_SEQ_LEN_CAP);
    }

    #[test]
    fn windows_follow_each_familys_layer_pattern() {
        let gemma2 = model_of(GEMMA2_27B);
        assert_eq!((gemma2.sliding_window, gemma2.sliding_window_layers), (4096, 23));
        assert!(gemma2.tied_embeddings);
        let gemma3 = model_of(GEMMA3_27B);
        // 62 layers, every sixth global: 10 global, 52 local.
        assert_eq!((gemma3.sliding_window, gemma3.sliding_window_layers), (1024, 52));
        let qwen = model_of(QWEN3_235B);
        assert_eq!(qwen.sliding_window_layers, 0);
    }

    #[test]
    fn unknown_families_and_missing_fields_name_the_field() {
        let msg = model_section(r#"{"model_type": "mamba", "hidden_size": 4096}"#).unwrap_err();
        assert!(
            msg.contains("model_type = \"mamba\"") && msg.contains("qwen3_moe"),
            "{msg}"
        );
        let msg = model_section(&LLAMA_31_405B.replace("\"num_hidden_layers\": 126,", "")).unwrap_err();
        assert!(msg.contains("num_hidden_layers is missing"), "{msg}");
        let msg = model_section(&LLAMA_31_405B.replace("126", "-1")).unwrap_err();
        assert!(msg.contains("num_hidden_layers = -1"), "{msg}");
        let msg = model_section("{\"hidden_size\": 1}").unwrap_err();
        assert!(msg.contains("model_type is missing"), "{msg}");
        assert!(model_section("not json")
            .unwrap_err()
            .contains("not a JSON config"));
        // Found in review: a listed MoE layer past the last one underflowed the dense count.
        let listed = LLAMA4_MAVERICK.replace("\"rope_scaling\": null", "\"moe_layers\": [1, 99]");
        let msg = model_section(&listed).unwrap_err();
        assert!(
            msg.contains("moe_layers lists layer 99 but num_hidden_layers = 48"),
            "{msg}"
        );
        // Counted, not looped: four billion layers answer at once (and are refused later).
        let huge = LLAMA4_MAVERICK.replace("\"num_hidden_layers\": 48", "\"num_hidden_layers\": 4294967295");
        assert_eq!(
            model_section(&huge).unwrap().dense_layers,
            Some(4294967295 - 4294967295 / 2)
        );
    }
}
