//! A priced layout as a framework's launch arguments (`--emit megatron|nemo|torchtitan|maxtext`),
//! so the layout chosen is not re-typed by hand. Each flag or key is named as the framework's
//! source defines it (cited beside each emitter); a knob the framework lacks becomes a comment,
//! never a silent drop.

use crate::model::{Dtype, FfnKind, Layout, Recompute, Training, Transformer};
use clap::ValueEnum;
use serde::Serialize;

/// The frameworks a layout can be written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// Megatron-LM / Megatron-Core command-line flags (pretrain_gpt.py).
    Megatron,
    /// NeMo 2.0 recipe overrides (`nemo llm pretrain --factory ... key=value`).
    Nemo,
    /// A torchtitan job TOML ([parallelism], [training], [activation_checkpoint]).
    Torchtitan,
    /// MaxText `key=value` overrides of base.yml (ici_* / dcn_* mesh axes).
    Maxtext,
}

/// What a launch needs: the model, the training settings and the layout, on `count`
/// accelerators in scale-up domains of `scale_up_domain`.
pub struct Job<'a> {
    pub model_name: &'a str,
    pub model: &'a Transformer,
    pub training: &'a Training,
    pub layout: &'a Layout,
    pub accelerator: &'a str,
    pub scale_up_domain: u32,
}

impl<'a> Job<'a> {
    /// The job a resolved scenario describes.
    pub fn of_scenario(s: &'a crate::input::scenario::Scenario) -> Job<'a> {
        Job {
            model_name: &s.model_name,
            model: &s.model,
            training: &s.training,
            layout: &s.layout,
            accelerator: &s.accelerator.id,
            scale_up_domain: s.hardware.scale_up_domain,
        }
    }
}

/// The job as `framework`'s arguments, with a header saying what it is and comments for what
/// the framework cannot express.
pub fn emit(framework: Framework, job: &Job) -> String {
    let l = job.layout;
    let mut out = format!(
        "# {} on {} x {}: {}\n",
        job.model_name,
        l.accelerators(),
        job.accelerator,
        crate::report::export::layout_line(l)
    );
    out += &match framework {
        Framework::Megatron => megatron(job),
        Framework::Nemo => nemo(job),
        Framework::Torchtitan => torchtitan(job),
        Framework::Maxtext => maxtext(job),
    };
    out
}

/// Arguments as `--flag value` pairs (or `key=value`, with `joiner` "="), with comments
/// gathered for the header.
struct Args {
    items: Vec<(String, Option<String>)>,
    comments: Vec<String>,
    joiner: &'static str,
}

impl Args {
    fn with_joiner(joiner: &'static str) -> Args {
        Args {
            items: vec![],
            comments: vec![],
            joiner,
        }
    }
    /// `--flag value` pairs.
    fn flags() -> Args {
        Args::with_joiner(" ")
    }
    /// `key=value` overrides.
    fn overrides() -> Args {
        Args::with_joiner("=")
    }
    fn flag(&mut self, name: &str) {
        self.items.push((name.to_string(), None));
    }
    fn value(&mut self, name: &str, v: impl std::fmt::Display) {
        self.items.push((name.to_string(), Some(v.to_string())));
    }
    fn note(&mut self, text: impl Into<String>) {
        self.comments.push(text.into());
    }
    /// Comments, then `command` and one `--flag value \` per line.
    fn shell(&self, sources: &str, command: &str) -> String {
        let mut out = format!("# names as defined in {sources}\n");
        for c in &self.comments {
            out += &format!("# {c}\n");
        }
        out += &format!("{command} \\\n");
        let n = self.items.len();
        for (i, (k, v)) in self.items.iter().enumerate() {
            let sep = if i + 1 < n { " \\" } else { "" };
            out += &match v {
                Some(v) => format!("{k}{}{v}{sep}\n", self.joiner),
                None => format!("{k}{sep}\n"),
            };
        }
        out
    }
}

/// Layers per virtual pipeline stage where they divide evenly.
fn layers_per_virtual_stage(model: &Transformer, l: &Layout) -> Option<u32> {
    let stages = l.pp * l.interleave;
    model.layers.is_multiple_of(stages).then(|| model.layers / stages)
}

/// Megatron-LM flags: megatron/training/arguments.py at core_v0.15.0 (from core_v0.16 many are
/// generated from ModelParallelConfig / TransformerConfig fields under the same names);
/// `--cpu-offloading-num-layers` is on main (ModelParallelConfig) after v0.15.
fn megatron(job: &Job) -> String {
    let (m, t, l) = (job.model, job.training, job.layout);
    let mut a = Args::flags();
    a.value("--num-layers", m.layers);
    a.value("--hidden-size", m.hidden);
    a.value("--num-attention-heads", m.heads);
    a.value("--ffn-hidden-size", m.ffn);
    if m.is_latent_attention() {
        a.flag("--multi-latent-attention");
        if m.q_lora_rank > 0 {
            a.value("--q-lora-rank", m.q_lora_rank);
        }
        a.value("--kv-lora-rank", m.kv_lora_rank);
        a.value("--qk-head-dim", m.head_dim);
        a.value("--qk-pos-emb-head-dim", m.qk_rope_head_dim);
        a.value("--v-head-dim", m.v_head_dim);
    } else {
        if m.kv_heads < m.heads {
            a.flag("--group-query-attention");
            a.value("--num-query-groups", m.kv_heads);
        }
        if m.head_dim * m.heads != m.hidden {
            a.value("--kv-channels", m.head_dim);
        }
    }
    a.value("--seq-length", m.seq_len);
    a.value("--max-position-embeddings", m.seq_len);
    if m.ffn_kind == FfnKind::Swiglu {
        a.flag("--swiglu");
    }
    if !m.tied_embeddings {
        a.flag("--untie-embeddings-and-output-weights");
    }
    a.note(format!(
        "the vocabulary ({}) comes from the tokenizer (--tokenizer-type / --tokenizer-model)",
        m.vocab
    ));
    if m.is_moe() {
        a.value("--num-experts", m.experts);
        a.value("--moe-router-topk", m.experts_per_token);
        a.value("--moe-ffn-hidden-size", m.expert_ffn);
        if m.shared_experts > 0 {
            a.value(
                "--moe-shared-expert-intermediate-size",
                m.shared_experts * m.expert_ffn,
            );
        }
        if m.dense_layers > 0 {
            // First-k-dense as a pattern list (Megatron's --moe-layer-freq accepts a Python
            // list expression); interleaved placements (Llama 4) need their own pattern.
            a.value(
                "--moe-layer-freq",
                format!("'([0]*{}+[1]*{})'", m.dense_layers, m.layers - m.dense_layers),
            );
            a.note("--moe-layer-freq puts the dense layers first; for interleaved MoE (Llama 4) write the pattern, e.g. '([0,1]*24)'");
        }
        if m.n_group > 0 {
            a.value("--moe-router-num-groups", m.n_group);
            a.value("--moe-router-group-topk", m.topk_group);
        }
        a.value("--moe-token-dispatcher-type", "alltoall");
        a.flag("--moe-grouped-gemm");
        a.value("--expert-model-parallel-size", l.ep);
        a.value("--expert-tensor-parallel-size", l.etp);
        if t.stack.ep_overlap {
            a.flag("--overlap-moe-expert-parallel-comm");
            a.flag("--delay-wgrad-compute");
        }
    }
    if m.mtp_layers > 0 {
        a.value("--mtp-num-layers", m.mtp_layers);
    }
    if m.sliding_window > 0 {
        a.note(format!(
            "sliding window of {} tokens on {} layers: Megatron-Core's --window-size applies one window to every layer",
            m.sliding_window, m.sliding_window_layers
        ));
    }
    a.value("--tensor-model-parallel-size", l.tp);
    a.value("--pipeline-model-parallel-size", l.pp);
    if l.interleave > 1 {
        match layers_per_virtual_stage(m, l) {
            Some(n) => a.value("--num-layers-per-virtual-pipeline-stage", n),
            None => {
                a.value("--num-virtual-stages-per-pipeline-rank", l.interleave);
                a.note("layers do not divide pp x interleave: set --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers for the uneven stages");
            }
        }
    } else if l.pp > 1 && !m.layers.is_multiple_of(l.pp) {
        a.note("layers do not divide pp: set --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers for the uneven stages");
    }
    if l.cp > 1 {
        a.value("--context-parallel-size", l.cp);
    }
    a.note(format!(
        "data parallelism follows from the world size: {} ranks / (tp {} x pp {} x cp {}) = dp {}",
        l.accelerators(),
        l.tp,
        l.pp,
        l.cp,
        l.dp
    ));
    a.value("--micro-batch-size", l.microbatch);
    a.value("--global-batch-size", t.global_batch);
    if l.sequence_parallel {
        a.flag("--sequence-parallel");
    }
    if l.tp_overlap {
        a.flag("--tp-comm-overlap");
    }
    match l.recompute {
        Recompute::None => {}
        Recompute::Selective => a.value("--recompute-granularity", "selective"),
        Recompute::Full => {
            a.value("--recompute-granularity", "full");
            let (method, layers) = full_recompute_method(l);
            a.value("--recompute-method", method);
            a.value("--recompute-num-layers", layers);
        }
    }
    if l.offload_layers > 0 {
        a.note("--cpu-offloading-num-layers needs a Megatron-LM newer than core_v0.15.0");
        a.value("--cpu-offloading-num-layers", l.offload_layers);
    }
    match l.zero {
        0 => {}
        1 => a.flag("--use-distributed-optimizer"),
        stage => {
            a.flag("--use-megatron-fsdp");
            a.value(
                "--data-parallel-sharding-strategy",
                if stage == 2 {
                    "optim_grads"
                } else {
                    "optim_grads_params"
                },
            );
        }
    }
    if l.hybrid_shard {
        a.note("hybrid sharding (ZeRO inside each scale-up domain): Megatron's --num-distributed-optimizer-instances splits the distributed optimizer into that many replicas");
        a.value(
            "--num-distributed-optimizer-instances",
            data_parallel_groups(job).0,
        );
    }
    if t.stack.grad_reduce_overlap {
        a.flag("--overlap-grad-reduce");
    }
    if t.stack.param_gather_overlap && l.zero >= 1 {
        a.flag("--overlap-param-gather");
    }
    match t.dtype {
        Dtype::Bf16 => a.flag("--bf16"),
        Dtype::Fp16 => a.flag("--fp16"),
        Dtype::Fp8 => {
            a.flag("--bf16");
            a.value("--fp8-format", "hybrid");
        }
        Dtype::Fp4 => {
            a.flag("--bf16");
            a.value("--fp4-format", "e2m1");
            a.value("--fp4-recipe", "nvfp4");
        }
    }
    if t.attention != crate::model::AttentionKernel::Unfused {
        a.value("--attention-backend", "flash");
    } else {
        a.value("--attention-backend", "unfused");
    }
    let (hosts, per_host) = hosts(job);
    let command = format!("torchrun --nnodes {hosts} --nproc-per-node {per_host} pretrain_gpt.py");
    a.shell(
        "megatron/training/arguments.py (NVIDIA/Megatron-LM core_v0.15.0)",
        &command,
    )
}

/// NeMo 2.0 recipe overrides: nemo/lightning/pytorch/strategies/megatron_strategy.py
/// (MegatronStrategy), nemo/collections/llm/gpt/data (micro/global batch, seq_length) and
/// Megatron-Core's TransformerConfig (recompute_*), as `nemo llm pretrain` takes them.
fn nemo(job: &Job) -> String {
    let (m, t, l) = (job.model, job.training, job.layout);
    let mut a = Args::overrides();
    let (hosts, per_host) = hosts(job);
    a.value("trainer.num_nodes", hosts);
    a.value("trainer.devices", per_host);
    let s = "trainer.strategy.";
    a.value(&format!("{s}tensor_model_parallel_size"), l.tp);
    a.value(&format!("{s}pipeline_model_parallel_size"), l.pp);
    if l.interleave > 1 {
        a.value(&format!("{s}virtual_pipeline_model_parallel_size"), l.interleave);
    }
    a.value(&format!("{s}context_parallel_size"), l.cp);
    a.value(&format!("{s}sequence_parallel"), python_bool(l.sequence_parallel));
    if m.is_moe() {
        a.value(&format!("{s}expert_model_parallel_size"), l.ep);
        a.value(&format!("{s}expert_tensor_parallel_size"), l.etp);
    }
    a.value("data.micro_batch_size", l.microbatch);
    a.value("data.global_batch_size", t.global_batch);
    a.value("data.seq_length", m.seq_len);
    match l.recompute {
        Recompute::None => {}
        Recompute::Selective => a.value("model.config.recompute_granularity", "selective"),
        Recompute::Full => {
            a.value("model.config.recompute_granularity", "full");
            let (method, layers) = full_recompute_method(l);
            a.value("model.config.recompute_method", method);
            a.value("model.config.recompute_num_layers", layers);
        }
    }
    a.value("optim.config.use_distributed_optimizer", python_bool(l.zero >= 1));
    if l.zero >= 2 {
        a.note(format!(
            "ZeRO {}: NeMo 2.0 runs it through Megatron FSDP (trainer.strategy.fsdp=\"megatron\"), not the distributed optimizer",
            l.zero
        ));
    }
    if l.tp_overlap {
        a.note(
            "TP communication overlap: add the recipe's MegatronCommOverlapCallback (tp_comm_overlap=True)",
        );
    }
    if t.dtype == Dtype::Fp8 {
        a.note("FP8: use the recipe's bf16_with_fp8_mixed() precision plugin (trainer.plugins)");
    }
    a.note("the model's shape is the recipe's (--factory); the overrides set the layout");
    a.note("RECIPE: the NeMo recipe of the model, e.g. llama3_70b");
    a.shell(
        "NeMo 2.0 MegatronStrategy and the llm recipes (NVIDIA/NeMo)",
        "nemo llm pretrain --factory RECIPE",
    )
}

fn python_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A torchtitan job TOML: torchtitan/config/job_config.py at v0.2.2, the last release configured
/// by TOML (later versions take Python config registries).
fn torchtitan(job: &Job) -> String {
    let (m, t, l) = (job.model, job.training, job.layout);
    let mut comments = vec![];
    // FSDP over the data-parallel ranks; replicas of the shard group where hybrid sharding or
    // plain data parallelism is asked for.
    let (replicate, shard) = data_parallel_groups(job);
    match l.zero {
        1 => comments.push("ZeRO 1: torchtitan's FSDP2 shards parameters and gradients too (ZeRO-3); there is no optimizer-only sharding".into()),
        2 => comments.push("ZeRO 2: FSDP2 with fsdp_reshard_after_forward = \"never\" keeps the gathered parameters from the forward to the backward, as ZeRO-2 does".into()),
        _ => {}
    }
    let mut toml = String::new();
    toml += "[training]\n";
    // Without pipelining the local batch is the microbatch and the rest is gradient
    // accumulation; with it, the pipeline splits the local batch into microbatches.
    let local_batch = if l.pp > 1 {
        t.global_batch / l.dp
    } else {
        l.microbatch
    };
    toml += &format!("local_batch_size = {local_batch}\n");
    toml += &format!("global_batch_size = {}\n", t.global_batch);
    toml += &format!("seq_len = {}\n", m.seq_len);
    toml += "\n[parallelism]\n";
    toml += &format!("data_parallel_replicate_degree = {replicate}\n");
    toml += &format!("data_parallel_shard_degree = {shard}\n");
    toml += &format!("tensor_parallel_degree = {}\n", l.tp);
    toml += &format!("pipeline_parallel_degree = {}\n", l.pp);
    toml += &format!("context_parallel_degree = {}\n", l.cp);
    if m.is_moe() {
        toml += &format!("expert_parallel_degree = {}\n", l.ep);
        toml += &format!("expert_tensor_parallel_degree = {}\n", l.etp);
    }
    if l.pp > 1 {
        let schedule = if l.interleave > 1 {
            "Interleaved1F1B"
        } else {
            "1F1B"
        };
        toml += &format!("pipeline_parallel_schedule = \"{schedule}\"\n");
        toml += &format!("pipeline_parallel_microbatch_size = {}\n", l.microbatch);
        if let Some(n) = layers_per_virtual_stage(m, l) {
            toml += &format!("pipeline_parallel_layers_per_stage = {n}\n");
        }
    }
    if l.tp_overlap {
        toml += "enable_async_tensor_parallel = true\n";
    }
    if l.zero == 2 {
        toml += "fsdp_reshard_after_forward = \"never\"\n";
    }
    toml += "\n[activation_checkpoint]\n";
    match l.recompute {
        Recompute::None => toml += "mode = \"none\"\n",
        Recompute::Selective => toml += "mode = \"selective\"\nselective_ac_option = \"op\"\n",
        Recompute::Full => {
            if l.recompute_layers > 0 {
                comments.push(format!(
                    "{} recomputed layers per stage: torchtitan's selective_ac_option = \"N\" checkpoints every N-th layer instead",
                    l.recompute_layers
                ));
            }
            toml += "mode = \"full\"\n";
        }
    }
    if t.dtype == Dtype::Fp8 {
        toml += "\n[model]\nconverters = [\"quantize.linear.float8\"]\n";
        toml += "\n[quantize.linear.float8]\nrecipe_name = \"tensorwise\"\n";
    } else if t.dtype == Dtype::Fp4 {
        comments.push(
            "fp4: torchtitan's [quantize.linear.mx] is MXFP8 (mxfp8_cublas); no FP4 recipe is emitted".into(),
        );
    }
    if l.offload_layers > 0 {
        comments.push("activation offload: torchtitan has none".into());
    }
    comments.push(format!(
        "[model] name/flavor: a torchtitan model spec with {} layers, hidden {}, {} heads ({} KV), ffn {}",
        m.layers, m.hidden, m.heads, m.kv_heads, m.ffn
    ));
    let mut out = String::from(
        "# keys as defined in torchtitan/config/job_config.py (pytorch/torchtitan v0.2.2); run with CONFIG_FILE=job.toml ./run_train.sh\n",
    );
    for c in comments {
        out += &format!("# {c}\n");
    }
    out + &toml
}

/// MaxText overrides of base.yml: src/maxtext/configs/base.yml and the enums of
/// src/maxtext/configs/types.py (AI-Hypercomputer/maxtext v0.2.4; before 2026-02 the path was
/// src/MaxText/ and the module MaxText.train).
/// Each axis is split between the scale-up domain (ICI: a TPU slice, an NVLink node) and the
/// network between them (DCN), innermost first: tensor, context, then FSDP or data.
fn maxtext(job: &Job) -> String {
    let (m, t, l) = (job.model, job.training, job.layout);
    let mut a = Args::overrides();
    let mut room = ici_devices(job.scale_up_domain);
    if room != job.scale_up_domain {
        a.note(format!(
            "a {}-accelerator domain is used as blocks of {room}: mesh axes are powers of two",
            job.scale_up_domain
        ));
    }
    let mut split = |degree: u32| -> (u32, u32) {
        let ici = gcd(degree, room);
        room /= ici;
        (ici, degree / ici)
    };
    let (ici_tp, dcn_tp) = split(l.tp);
    let (ici_cp, dcn_cp) = split(l.cp);
    // MaxText's expert axis is a mesh axis of its own, carved from the data-parallel ranks.
    let expert = if m.is_moe() && l.dp.is_multiple_of(l.ep) {
        l.ep
    } else {
        1
    };
    if m.is_moe() && expert == 1 && l.ep > 1 {
        a.note(format!(
            "ep {} does not divide dp {}: it folds over tensor ranks, which MaxText's expert axis cannot",
            l.ep, l.dp
        ));
    }
    let (ici_ep, dcn_ep) = split(expert);
    let dp = l.dp / expert;
    let (ici_dp, dcn_dp) = split(dp);
    let (ici_pp, dcn_pp) = split(l.pp);
    let sharded = l.zero >= 1;
    // Hybrid sharding: FSDP inside the domain, replicas across it (dcn_data).
    let (ici_fsdp, dcn_fsdp, ici_data, dcn_data) = match (sharded, l.hybrid_shard) {
        (false, _) => (1, 1, ici_dp, dcn_dp),
        (true, true) => (ici_dp, 1, 1, dcn_dp),
        (true, false) => (ici_dp, dcn_dp, 1, 1),
    };
    if l.zero == 1 || l.zero == 2 {
        a.note(format!(
            "ZeRO {}: MaxText's fsdp axis shards parameters too (ZeRO-3)",
            l.zero
        ));
    }
    for (key, v) in [
        ("ici_tensor_parallelism", ici_tp),
        ("ici_context_parallelism", ici_cp),
        ("ici_expert_parallelism", ici_ep),
        ("ici_fsdp_parallelism", ici_fsdp),
        ("ici_data_parallelism", ici_data),
        ("ici_pipeline_parallelism", ici_pp),
        ("dcn_tensor_parallelism", dcn_tp),
        ("dcn_context_parallelism", dcn_cp),
        ("dcn_expert_parallelism", dcn_ep),
        ("dcn_fsdp_parallelism", dcn_fsdp),
        ("dcn_data_parallelism", dcn_data),
        ("dcn_pipeline_parallelism", dcn_pp),
    ] {
        a.value(key, v);
    }
    if l.pp > 1 {
        a.value(
            "num_pipeline_microbatches",
            t.global_batch / l.dp / l.microbatch.max(1),
        );
        if let Some(n) = layers_per_virtual_stage(m, l) {
            a.value("num_layers_per_pipeline_stage", n);
        }
    }
    // MaxText's batch is per device: sequences / accelerators (fractions allowed).
    let per_device = t.global_batch as f64 / l.accelerators() as f64;
    a.value("per_device_batch_size", trim_float(per_device));
    a.value("max_target_length", m.seq_len);
    // MaxText has no policy that keeps every activation: "minimal" keeps the projection
    // outputs and recomputes the rest (the attention core included, as selective does).
    let remat = match l.recompute {
        Recompute::None | Recompute::Selective => "minimal",
        Recompute::Full => "full",
    };
    if l.recompute == Recompute::None {
        a.note("no recomputation: MaxText's closest policy is remat_policy=minimal");
    }
    a.value("remat_policy", remat);
    let tpu = job.accelerator.starts_with("tpu");
    match t.dtype {
        Dtype::Fp8 => a.value("quantization", if tpu { "fp8" } else { "fp8_gpu" }),
        Dtype::Fp4 => a.value("quantization", if tpu { "fp4" } else { "te_nvfp4" }),
        Dtype::Fp16 => a.note("fp16: MaxText trains in bfloat16 (dtype=bfloat16)"),
        Dtype::Bf16 => {}
    }
    a.value("dtype", "bfloat16");
    // Without pipelining, microbatches beyond the first are gradient accumulation.
    let microbatches = t.global_batch / (l.dp * l.microbatch).max(1);
    if l.pp <= 1 && microbatches > 1 {
        a.value("gradient_accumulation_steps", microbatches);
    }
    a.shell(
        "src/maxtext/configs/base.yml (AI-Hypercomputer/maxtext v0.2.4)",
        "python3 -m maxtext.trainers.pre_train.train src/maxtext/configs/base.yml run_name=RUN",
    )
}

/// The data-parallel ranks as (replicas, shard group): ZeRO shards over all of them, over the
/// ranks inside one scale-up domain under hybrid sharding, and over none without ZeRO.
fn data_parallel_groups(job: &Job) -> (u32, u32) {
    let l = job.layout;
    match (l.zero, l.hybrid_shard) {
        (0, _) => (l.dp, 1),
        (_, true) => {
            let inside = (job.scale_up_domain / (l.tp * l.cp).max(1)).clamp(1, l.dp);
            let shard = gcd(inside, l.dp);
            (l.dp / shard, shard)
        }
        _ => (1, l.dp),
    }
}

/// Accelerators a mesh may put on its in-domain (ICI) axes: the domain, or its largest
/// power-of-two block where it is not one (an NVL72 rack runs as 64 plus spares).
fn ici_devices(domain: u32) -> u32 {
    let domain = domain.max(1);
    if domain.is_power_of_two() {
        domain
    } else {
        1 << (31 - domain.leading_zeros())
    }
}

/// Hosts and accelerators per host, for `torchrun --nnodes/--nproc-per-node` and NeMo's
/// `trainer.num_nodes/devices`: four per host on an NVL72 rack's compute trays (NVIDIA
/// GB200/GB300 NVL72: 18 trays of 4 GPUs), else the domain up to eight (HGX boards).
fn hosts(job: &Job) -> (u64, u32) {
    let per_host = if job.scale_up_domain == 72 {
        4
    } else {
        job.scale_up_domain.clamp(1, 8)
    };
    (job.layout.accelerators().div_ceil(u64::from(per_host)), per_host)
}

/// Megatron-Core's `recompute_method` and `recompute_num_layers` for full recomputation: `block`
/// of the layers asked per stage, or `uniform` in chunks of one layer (every layer).
fn full_recompute_method(l: &Layout) -> (&'static str, u32) {
    if l.recompute_layers > 0 {
        ("block", l.recompute_layers)
    } else {
        ("uniform", 1)
    }
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::catalog::Catalog;
    use crate::input::scenario::{Scenario, ScenarioFile, DEFAULT_SCENARIO};

    fn scenario(text: &str) -> Scenario {
        ScenarioFile::parse(text, "t")
            .unwrap()
            .resolve(&Catalog::builtin(), "t")
            .unwrap()
    }

    fn emitted(framework: Framework, s: &Scenario) -> String {
        emit(framework, &Job::of_scenario(s))
    }

    /// `key` followed by its value (`--flag value` or `key=value`), where the output has it.
    fn value_of(text: &str, key: &str, joiner: &str) -> Option<u64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.trim_end_matches(" \\").strip_prefix(&format!("{key}{joiner}")))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    const DEEPSEEK: &str =
        "[model]\npreset = \"deepseek-v3\"\n[training]\nglobal_batch = 8192\ndtype = \"fp8\"\n\
        [cluster]\naccelerator = \"h100-sxm\"\ncount = 2048\n[layout]\ntp = 1\npp = 16\ncp = 1\nep = 64\n\
        microbatch = 1\nrecompute = \"full\"\nrecompute_layers = 2\nzero = 1\n";

    /// The flags read back give the layout that was priced.
    #[test]
    fn megatron_flags_read_back_as_the_layout() {
        for text in [DEFAULT_SCENARIO, DEEPSEEK] {
            let s = scenario(text);
            let out = emitted(Framework::Megatron, &s);
            let l = s.layout;
            for (flag, want) in [
                ("--tensor-model-parallel-size", l.tp),
                ("--pipeline-model-parallel-size", l.pp),
                ("--micro-batch-size", l.microbatch),
                ("--global-batch-size", s.training.global_batch),
                ("--num-layers", s.model.layers),
                ("--seq-length", s.model.seq_len),
            ] {
                assert_eq!(
                    value_of(&out, flag, " "),
                    Some(u64::from(want)),
                    "{flag} in\n{out}"
                );
            }
            let cp = value_of(&out, "--context-parallel-size", " ").unwrap_or(1);
            assert_eq!(cp, u64::from(l.cp));
            if l.interleave > 1 {
                let per_stage = value_of(&out, "--num-layers-per-virtual-pipeline-stage", " ").unwrap();
                assert_eq!(
                    per_stage * u64::from(l.pp * l.interleave),
                    u64::from(s.model.layers)
                );
            }
            let nodes = value_of(&out, "torchrun --nnodes", " ").unwrap();
            assert!(
                out.contains(&format!("--nproc-per-node {}", l.accelerators() / nodes)),
                "{out}"
            );
        }
    }

    #[test]
    fn megatron_writes_latent_attention_experts_mtp_fp8_and_block_recompute() {
        let out = emitted(Framework::Megatron, &scenario(DEEPSEEK));
        for line in [
            "--multi-latent-attention",
            "--q-lora-rank 1536",
            "--kv-lora-rank 512",
            "--qk-head-dim 128",
            "--qk-pos-emb-head-dim 64",
            "--v-head-dim 128",
            "--num-experts 256",
            "--moe-router-topk 8",
            "--moe-ffn-hidden-size 2048",
            "--moe-shared-expert-intermediate-size 2048",
            "--moe-layer-freq '([0]*3+[1]*58)'",
            "--moe-router-num-groups 8",
            "--moe-router-group-topk 4",
            "--expert-model-parallel-size 64",
            "--mtp-num-layers 1",
            "--fp8-format hybrid",
            "--recompute-granularity full",
            "--recompute-method block",
            "--recompute-num-layers 2",
            "--use-distributed-optimizer",
        ] {
            assert!(out.contains(line), "{line} missing in\n{out}");
        }
        // 61 layers over 16 stages: uneven, said in a comment.
        assert!(out.contains("# layers do not divide pp"), "{out}");
    }

    /// Every framework's mesh multiplies back to the accelerator count, on 8-GPU boards, NVL72
    /// racks and TPU slices, dense and MoE.
    #[test]
    fn every_mesh_multiplies_to_the_accelerator_count() {
        let gb200 = DEFAULT_SCENARIO
            .replace("\"h100-sxm\"", "\"gb200\"")
            .replace("tp = 4", "tp = 16")
            .replace("count = 2048", "count = 4096")
            .replace("cp = 2 ", "cp = 1 ")
            .replace("interleave = 5", "interleave = 1");
        let tpu = "[model]\npreset = \"llama3-8b\"\n[training]\nstack = \"maxtext\"\nglobal_batch = 1024\n[cluster]\n\
                   accelerator = \"tpu-v5e\"\ncount = 512\n[layout]\ntp = 1\npp = 1\nzero = 3\nhybrid_shard = true\n";
        for text in [DEFAULT_SCENARIO, DEEPSEEK, &gb200, tpu] {
            let s = scenario(text);
            let count = s.layout.accelerators();
            let out = emitted(Framework::Maxtext, &s);
            let mesh: u64 = out
                .lines()
                .filter(|l| l.starts_with("ici_") || l.starts_with("dcn_"))
                .map(|l| {
                    l.trim_end_matches(" \\")
                        .split('=')
                        .nth(1)
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                })
                .product();
            // MaxText's expert axis is carved from data parallelism; where ep folds over
            // tensor ranks a comment says the mesh lacks it.
            assert!(
                mesh == count || out.contains("does not divide dp"),
                "{mesh} vs {count}\n{out}"
            );
            let toml_text = emitted(Framework::Torchtitan, &s);
            let job: toml::Value = toml::from_str(&toml_text).unwrap();
            let p = &job["parallelism"];
            let degree = |k: &str| p.get(k).map_or(1, |v| v.as_integer().unwrap() as u64);
            assert_eq!(
                degree("data_parallel_replicate_degree")
                    * degree("data_parallel_shard_degree")
                    * degree("tensor_parallel_degree")
                    * degree("pipeline_parallel_degree")
                    * degree("context_parallel_degree"),
                count,
                "{toml_text}"
            );
            let nemo = emitted(Framework::Nemo, &s);
            let (nodes, devices) = (
                value_of(&nemo, "trainer.num_nodes", "=").unwrap(),
                value_of(&nemo, "trainer.devices", "=").unwrap(),
            );
            assert_eq!(nodes * devices, count, "{nemo}");
        }
    }

    #[test]
    fn a_knob_the_framework_lacks_is_a_comment() {
        let s = scenario(DEEPSEEK);
        let titan = emitted(Framework::Torchtitan, &s);
        assert!(titan.contains("# 2 recomputed layers per stage"), "{titan}");
        assert!(
            titan.contains("# ZeRO 1: torchtitan's FSDP2 shards parameters"),
            "{titan}"
        );
        let maxtext = emitted(Framework::Maxtext, &s);
        assert!(
            maxtext.contains("# ZeRO 1: MaxText's fsdp axis shards parameters too"),
            "{maxtext}"
        );
        assert!(maxtext.contains("quantization=fp8_gpu"), "{maxtext}");
    }
}
