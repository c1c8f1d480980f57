//! The GPU and CPU backends agree. Every test here (and in the `gpu_or_skip` modules of the
//! other files) needs a GPU adapter: in CI (`REQUIRE_GPU=1`) a missing adapter fails it; on a
//! machine without one it skips with a message, as the module's name says.

use clustersweep::engine::search::{Invalid, Objective, SearchSpace};
use clustersweep::engine::sweep::bench::{bench_space, space_of, BenchSpace};
use clustersweep::engine::sweep::cpu::sweep_cpu;
use clustersweep::engine::sweep::gpu::{select_adapters, GpuEngine, Outcome};
use clustersweep::input::catalog::Catalog;
use clustersweep::input::scenario::ScenarioFile;
use clustersweep::model::run::estimate;

/// The best adapter, software ones included; None (with a message) when there is none and CI
/// does not require one.
pub fn engine() -> Option<GpuEngine> {
    match select_adapters().and_then(|a| GpuEngine::new(&a[0])) {
        Ok(e) => Some(e),
        Err(message) => {
            if std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!(
                    "REQUIRE_GPU=1 but no GPU adapter: {message} (install mesa-vulkan-drivers libvulkan1)"
                );
            }
            eprintln!("skipping the GPU test: {message}");
            None
        }
    }
}

/// An MoE model in FP8 with unfused attention, dropout, fp32 gradients, a load imbalance, purchase pricing and
/// 1 MW sites (clusters of more than ~650 accelerators span sites): every branch the dense bench
/// space does not take.
const MOE_SCENARIO: &str = r#"
[model]
preset = "mixtral-8x22b"
[training]
global_batch = 1024
dtype = "fp8"
flash_attention = false
dropout = true
grad_dtype = "fp32"
tokens = 2e12
moe_imbalance = 1.25
[cluster]
pricing = "capex"
price_usd = 30000
site_power_mw = 1.0
[search]
accelerators = ["h100-sxm", "b200", "gb200", "mi300x", "gaudi3"]
counts = [256, 512, 2048]
cp = [1, 2]
ep = [1, 2, 4, 8]
"#;

/// A dense model across the software stacks whose switches differ most: unfused attention and
/// blocking sends (megatron-2021), per-tensor ZeRO-3 gathers that wait and regather
/// (deepspeed-zero3), FlashAttention-1 and fp32 master shards without TP or PP (llm-foundry),
/// gradient sync per step under PP and async TP (torchtitan), data parallelism outermost and
/// per-step FSDP (meta-llama3), fp32 weights (maxtext), and Megatron-Core's overlaps; partial
/// recomputation and activation offload; on two sites above 1,500 accelerators.
const STACKS_SCENARIO: &str = r#"
[model]
preset = "llama3-70b"
seq_len = 4096
[training]
global_batch = 512
[cluster]
site_power_mw = 2.0
[search]
accelerators = ["h100-sxm", "a100-80gb", "gb200"]
stacks = ["megatron-2021", "deepspeed-zero3", "llm-foundry", "torchtitan", "meta-llama3", "maxtext", "megatron-core-2025"]
counts = [64, 512, 2048]
tp = [1, 4, 8, 16]
cp = [1, 2]
microbatch = [1, 2]
interleave = [1, 2, 4]
recompute_layers = [0, 4]
offload_layers = [0, 4]
"#;

fn stacks_space(objective: Objective) -> SearchSpace {
    let file = ScenarioFile::parse(STACKS_SCENARIO, "stacks").unwrap();
    SearchSpace::resolve(&file, &Catalog::builtin(), objective, "stacks").unwrap()
}

/// The shaders' outcome code of a layout the CPU refuses.
fn refused(why: Invalid) -> u32 {
    match why {
        Invalid::Degrees => Outcome::Degrees,
        Invalid::Layout => Outcome::Layout,
        Invalid::Dtype => Outcome::Dtype,
        Invalid::Stack => Outcome::Stack,
    }
    .code()
}

fn moe_space(objective: Objective) -> SearchSpace {
    let file = ScenarioFile::parse(MOE_SCENARIO, "moe").unwrap();
    SearchSpace::resolve(&file, &Catalog::builtin(), objective, "moe").unwrap()
}

/// Latent attention, multi-token prediction and leading dense layers (DeepSeek-V3), and sliding
/// windows on half the layers (gpt-oss), both with unfused and fused attention.
fn attention_space(preset: &str, flash: bool) -> SearchSpace {
    let text = format!(
        "[model]\npreset = \"{preset}\"\n[training]\nglobal_batch = 2048\nflash_attention = {flash}\n\
         [search]\naccelerators = [\"h800\", \"gb200\"]\ncounts = [512, 2048]\nep = [8, 32, 64]\n\
         pp = [1, 4, 16]\ntp = [1, 2, 4]\n"
    );
    let file = ScenarioFile::parse(&text, "attention").unwrap();
    SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "attention").unwrap()
}

#[test]
fn gpu_and_cpu_agree_on_tpu_tori_and_hybrid_sharding() {
    let Some(engine) = engine() else { return };
    let text = "[model]\npreset = \"llama3-70b\"\nseq_len = 2048\n[training]\nstack = \"maxtext\"\nglobal_batch = 4096\n\
                [search]\naccelerators = [\"tpu-v5e\", \"tpu-v6e\", \"h100-sxm\"]\ncounts = [256, 2048, 8192]\n\
                tp = [1, 4, 16]\nzero = [0, 3]\n";
    let file = ScenarioFile::parse(text, "tpu").unwrap();
    let space = SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "tpu").unwrap();
    let priced = check_parity(&space, &engine, seed() + 20, 60_000);
    assert!(priced > 500, "priced {priced} layouts");
    check_sweeps_agree(&space, &engine, 10);
}

#[test]
fn gpu_and_cpu_agree_on_overlapped_all_to_all_dualpipe_and_per_node_dispatch() {
    let Some(engine) = engine() else { return };
    // DeepSeek-V3 in FP8 on HAI-LLM (overlapped all-to-all, DualPipe, FP8 per-node dispatch
    // under group-limited routing, lean activations) beside Megatron-Core, with data
    // parallelism outermost (meta-llama3) so that the expert stride follows the pipeline.
    let text = "[model]\npreset = \"deepseek-v3\"\n[training]\ndtype = \"fp8\"\nglobal_batch = 4096\n\
                [search]\naccelerators = [\"h800\", \"gb200\"]\nstacks = [\"hai-llm\", \"megatron-core-2025\", \"meta-llama3\"]\n\
                counts = [512, 2048]\nep = [8, 64]\npp = [1, 4, 16]\ntp = [1, 2]\nzero = [1]\n";
    let file = ScenarioFile::parse(text, "dualpipe").unwrap();
    let space = SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "dualpipe").unwrap();
    let priced = check_parity(&space, &engine, seed() + 30, 40_000);
    assert!(priced > 500, "priced {priced} layouts");
    check_sweeps_agree(&space, &engine, 10);
}

#[test]
fn gpu_and_cpu_agree_on_latent_attention_sliding_windows_and_mtp() {
    let Some(engine) = engine() else { return };
    for (i, (preset, flash)) in [
        ("deepseek-v3", true),
        ("deepseek-v3", false),
        ("gpt-oss-120b", true),
    ]
    .into_iter()
    .enumerate()
    {
        let space = attention_space(preset, flash);
        let priced = check_parity(&space, &engine, seed() + 10 + i as u64, 40_000);
        assert!(priced > 500, "{preset}: priced {priced} layouts");
        check_sweeps_agree(&space, &engine, 10);
    }
}

/// SplitMix64: a seeded, dependency-free stream of indices.
fn indices(seed: u64, n: usize, size: u64) -> Vec<u64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            (z ^ (z >> 31)) % size
        })
        .collect()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    a == b || ((a - b) / a.abs().max(b.abs())).abs() <= tolerance
}

fn check_parity(space: &SearchSpace, engine: &GpuEngine, seed: u64, n: usize) -> usize {
    let idx = indices(seed, n, space.size);
    let gpu = engine.evaluate(space, &idx).unwrap();
    let mut priced = 0;
    for (i, g) in idx.iter().zip(&gpu) {
        let (outcome, cpu) = match space.candidate(*i) {
            Err(why) => (refused(why), None),
            Ok(c) => {
                let a = &space.accelerators[c.accelerator];
                let e = estimate(
                    &space.model,
                    &space.training_for(&c),
                    &a.hardware,
                    &a.economics,
                    &c.layout,
                );
                (
                    if e.fits {
                        Outcome::Valid.code()
                    } else {
                        Outcome::NoFit.code()
                    },
                    Some(e),
                )
            }
        };
        let context = format!("index {i} (seed {seed}; rerun with CLUSTERSWEEP_SEED={seed})");
        if let Some(e) = cpu {
            priced += 1;
            let pairs = [
                ("step_time_s", e.step_time_s, g.step_time_s),
                ("tokens_per_s", e.tokens_per_s, g.tokens_per_s),
                ("mfu", e.mfu, g.mfu),
                ("hfu", e.hfu, g.hfu),
                (
                    "memory",
                    e.memory_per_accelerator_bytes,
                    g.memory_per_accelerator_bytes,
                ),
                ("time_to_train_s", e.time_to_train_s, g.time_to_train_s),
                ("power_mw", e.power_mw, g.power_mw),
                ("energy_mwh", e.energy_mwh, g.energy_mwh),
                ("cost_usd", e.cost_usd, g.cost_usd),
            ];
            for (name, cpu, gpu) in pairs {
                assert!(
                    close(cpu, gpu as f64, 1e-4),
                    "{name}: cpu {cpu} gpu {gpu} at {context}"
                );
            }
            if outcome != g.outcome {
                // Only a layout within the tolerance of the memory limit may fit on one side.
                let margin = (e.memory_per_accelerator_bytes - e.memory_capacity_bytes).abs()
                    / e.memory_capacity_bytes;
                assert!(
                    margin <= 1e-4,
                    "fits: cpu {outcome} gpu {} at {context}",
                    g.outcome
                );
            }
        } else {
            assert_eq!(outcome, g.outcome, "outcome at {context}");
        }
    }
    priced
}

fn seed() -> u64 {
    std::env::var("CLUSTERSWEEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261125)
}

#[test]
fn gpu_and_cpu_agree_on_100k_random_layouts() {
    let Some(engine) = engine() else { return };
    let seed = seed();
    let dense = check_parity(&bench_space(), &engine, seed, 100_000);
    let moe = check_parity(&moe_space(Objective::Cost), &engine, seed + 1, 150_000);
    // bench --space large: 600 networks, indices past 2^32.
    let large = check_parity(&space_of(BenchSpace::Large), &engine, seed + 2, 60_000);
    // Enough of them are priced, not only decoded and refused.
    assert!(
        dense > 10_000 && moe > 5_000 && large > 1_000,
        "priced {dense} dense, {moe} MoE and {large} large-space layouts"
    );
}

#[test]
fn gpu_and_cpu_agree_across_software_stacks() {
    let Some(engine) = engine() else { return };
    let space = stacks_space(Objective::Time);
    let priced = check_parity(&space, &engine, seed() + 2, 120_000);
    assert!(priced > 5_000, "priced {priced} layouts");
    // Every stack contributes priced layouts, and some layouts are refused for their stack.
    let cpu = sweep_cpu(&space, 0..space.size, 10, false, &|_, _| {});
    assert!(cpu.counts.invalid_stack > 0, "{:?}", cpu.counts);
    check_sweeps_agree(&space, &engine, 20);
    check_sweeps_agree(&stacks_space(Objective::Cost), &engine, 10);
}

#[test]
fn gpu_and_cpu_agree_across_network_choices() {
    let Some(engine) = engine() else { return };
    // Each accelerator on every network the axes combine to: NIC rates, topologies (the
    // three-tier pod's longer path), pod sizes and oversubscription, TPU slices of three sizes
    // (the torus axis follows the slice), and a rental and a capex objective (the network's
    // parts in the price and the power).
    for (pricing, objective, fast) in [
        ("rental", Objective::Cost, "gb200"),
        ("capex", Objective::Time, "gb300"),
    ] {
        let text = format!(
            "[model]\npreset = \"llama3-70b\"\nseq_len = 4096\n[training]\nglobal_batch = 1024\n\
             [cluster]\npricing = \"{pricing}\"\n\
             [search]\naccelerators = [\"h100-sxm\", \"{fast}\", \"tpu-v6e\"]\ncounts = [512, 4096, 16384]\n\
             tp = [1, 4, 8]\ncp = [1, 2]\nscale_up_domain = [8, 16, 64, 72, 256]\nscale_out_gbps = [100, 200, 400, 800]\n\
             topology = [\"two-tier\", \"three-tier\"]\npod_size = [1024, 32768]\npod_oversubscription = [1, 4]\n"
        );
        let file = ScenarioFile::parse(&text, "network").unwrap();
        let space = SearchSpace::resolve(&file, &Catalog::builtin(), objective, "network").unwrap();
        assert!(
            space.accelerators.len() >= 20,
            "{} networks",
            space.accelerators.len()
        );
        let priced = check_parity(&space, &engine, seed() + 40, 40_000);
        assert!(priced > 500, "{pricing}: priced {priced} layouts");
        check_sweeps_agree(&space, &engine, 10);
    }
}

/// The GPU's and the CPU's exhaustive sweeps agree, and the GPU's pruned sweep has the same top
/// k as its exhaustive one; returns the layouts the pruned sweep skipped.
fn check_sweeps_agree(space: &SearchSpace, engine: &GpuEngine, k: usize) -> u64 {
    let (pruned, _) = engine.sweep(space, 0..space.size, k, true, &|_, _| {}).unwrap();
    let (gpu, _) = engine.sweep(space, 0..space.size, k, false, &|_, _| {}).unwrap();
    assert_eq!(pruned.counts.evaluated + pruned.counts.pruned, space.size);
    assert_eq!(gpu.counts.pruned, 0);
    assert_eq!(pruned.top.clone().into_sorted(), gpu.top.clone().into_sorted());
    let cpu = sweep_cpu(space, 0..space.size, k, false, &|_, _| {});
    assert_eq!(gpu.counts.evaluated, cpu.counts.evaluated);
    assert_eq!(gpu.counts.invalid(), cpu.counts.invalid());
    // Feasibility may differ only at the memory limit; here it does not differ at all.
    assert_eq!(gpu.counts, cpu.counts);
    let g = gpu.top.into_sorted();
    let c = cpu.top.into_sorted();
    assert_eq!(g.len(), c.len());
    for (rank, (a, b)) in g.iter().zip(&c).enumerate() {
        assert!(
            a.index == b.index || close(a.objective, b.objective, 1e-4),
            "rank {rank}: gpu {a:?} cpu {b:?}"
        );
        assert!(
            close(a.objective, b.objective, 1e-4),
            "rank {rank}: gpu {a:?} cpu {b:?}"
        );
    }
    pruned.counts.pruned
}

#[test]
fn gpu_sweep_finds_the_cpu_top_k_and_counts() {
    let Some(engine) = engine() else { return };
    let pruned = check_sweeps_agree(&moe_space(Objective::Time), &engine, 25);
    assert!(pruned > 0, "the GPU pruned nothing: the check shows nothing");
    check_sweeps_agree(&moe_space(Objective::Mfu), &engine, 10);
    check_sweeps_agree(&moe_space(Objective::Energy), &engine, 10);
}

#[test]
fn gpu_sweep_of_a_slice_past_2_to_the_32_decodes_64_bit_indices() {
    // Regression: the shaders carry the index in two 32-bit halves.
    let Some(engine) = engine() else { return };
    let text = "[model]\npreset = \"llama3-70b\"\n[training]\nglobal_batch = 2048\n[search]\n\
                counts = { from = 1024, to = 131072, step = 8 }\nzero = [0, 1, 2, 3]\n";
    let file = ScenarioFile::parse(text, "big").unwrap();
    let space = SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "big").unwrap();
    assert!(space.size > 1 << 33, "{}", space.size);
    let start = (1u64 << 32) + 12_345;
    let range = start..start + 300_000;
    let (gpu, _) = engine
        .sweep(&space, range.clone(), 10, false, &|_, _| {})
        .unwrap();
    let cpu = sweep_cpu(&space, range, 10, false, &|_, _| {});
    assert_eq!(gpu.counts, cpu.counts);
    let g: Vec<u64> = gpu.top.into_sorted().iter().map(|r| r.index).collect();
    let c: Vec<u64> = cpu.top.into_sorted().iter().map(|r| r.index).collect();
    assert_eq!(g, c);
}

#[test]
fn gpu_and_cpu_backends_give_the_same_plan() {
    use clustersweep::analysis::plan::{plan, PlanOptions, DEFAULT_PLAN};
    use clustersweep::engine::sweep::driver::Backend;
    if engine().is_none() {
        return;
    }
    let file = ScenarioFile::parse(DEFAULT_PLAN, "stargate").unwrap();
    let run = |backend| {
        let options = PlanOptions {
            objective: Objective::Time,
            backend,
            pareto: true,
            top: 50,
        };
        plan(&file, &Catalog::builtin(), &options, "stargate").unwrap()
    };
    let (gpu, cpu) = (run(Backend::Gpu), run(Backend::Cpu));
    assert!(gpu.backend.starts_with("gpu"), "{}", gpu.backend);
    assert_eq!(gpu.pairs, cpu.pairs);
    assert_eq!(gpu.dropped, cpu.dropped);
    let lists = [
        (&gpu.plans, &cpu.plans),
        (&gpu.per_accelerator, &cpu.per_accelerator),
        (gpu.pareto.as_ref().unwrap(), cpu.pareto.as_ref().unwrap()),
    ];
    for (g, c) in lists {
        assert_eq!(g.len(), c.len());
        for (a, b) in g.iter().zip(c) {
            // The same pair; the same layout unless two of the pair tie within f32 precision.
            assert_eq!(
                (&a.layout.accelerator, a.layout.count),
                (&b.layout.accelerator, b.layout.count)
            );
            let (ta, tb) = (a.estimate.time_to_train_s, b.estimate.time_to_train_s);
            assert!(
                a.layout == b.layout || close(ta, tb, 1e-4),
                "gpu {:?} cpu {:?}",
                a.layout,
                b.layout
            );
            assert!(close(ta, tb, 1e-4), "{ta} vs {tb}");
            assert_eq!(a.binding_constraint, b.binding_constraint);
        }
    }
}

#[test]
fn draws_priced_in_one_dispatch_match_each_draw_priced_alone() {
    // sweep --uncertainty stacks the draws' accelerator tables into one dispatch; each entry
    // must read its own draw's table, so the result is each draw evaluated alone, bit for bit.
    use clustersweep::analysis::uncertainty::{assumptions_per_family, drawn_catalogs, ModelError};
    let Some(engine) = engine() else { return };
    let file = ScenarioFile::parse(MOE_SCENARIO, "moe").unwrap();
    let catalog = Catalog::builtin();
    let assumptions = assumptions_per_family(&catalog, ModelError::builtin(), true, |_| {
        (2048, "megatron-core-2025".into(), "h100-sxm".into())
    });
    let spaces: Vec<SearchSpace> = drawn_catalogs(&catalog, &assumptions, 5, 3)
        .iter()
        .map(|c| SearchSpace::resolve(&file, c, Objective::Cost, "moe").unwrap())
        .collect();
    let reference = moe_space(Objective::Cost);
    let valid: Vec<u64> = indices(11, 4000, reference.size)
        .into_iter()
        .filter(|i| reference.candidate(*i).is_ok())
        .take(40)
        .collect();
    assert!(valid.len() >= 20, "{}", valid.len());
    let refs: Vec<&SearchSpace> = spaces.iter().collect();
    let together = engine.evaluate_draws(&refs, &valid).unwrap();
    assert_eq!(together.len(), spaces.len());
    for (space, batched) in spaces.iter().zip(&together) {
        let alone = engine.evaluate(space, &valid).unwrap();
        assert_eq!(
            bytemuck::cast_slice::<_, u8>(&alone),
            bytemuck::cast_slice::<_, u8>(batched)
        );
    }
    // The draws differ (prices, failure rates), so an entry reading another draw's table
    // would not match.
    let cost = |d: usize| together[d].iter().map(|m| m.cost_usd).collect::<Vec<_>>();
    assert_ne!(cost(0), cost(1));
    // Spaces of different scenarios are refused, not mixed.
    let other = stacks_space(Objective::Cost);
    assert!(engine.evaluate_draws(&[&spaces[0], &other], &valid[..1]).is_err());
}
