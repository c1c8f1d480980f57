//! `clustersweep bench`: layouts per second on a fixed built-in space, per backend.

use super::cpu::sweep_cpu;
use super::driver::{progress_bar, Backend};
use super::gpu::{select_adapters, GpuEngine};
use super::{Counts, Partial, Ranked};
use crate::engine::search::{Objective, SearchSpace};
use crate::error::Error;
use crate::input::catalog::Catalog;
use crate::input::scenario::ScenarioFile;
use serde::Serialize;

/// The model, training and cluster both bench spaces price (a macro, so that `concat!` can
/// build each fixed scenario from it at compile time).
macro_rules! bench_model {
    () => {
        r#"
[model]
preset = "llama3-70b"

[training]
tokens = 15e12

[cluster]
price_per_hour_usd = 2.0
"#
    };
}

/// The space `bench` sweeps: LLaMA 3 70B on every catalog accelerator, six cluster sizes, every
/// knob (tp, pp over the divisors of 80, cp, microbatch, interleave, recompute, sequence
/// parallelism, ZeRO): 11,612,160 layouts over the 18 accelerators of the built-in catalog.
pub const BENCH_SCENARIO: &str = concat!(
    bench_model!(),
    r#"
[search]
counts = [512, 1024, 2048, 4096, 8192, 16384]
cp = [1, 2, 4, 8]
interleave = [1, 2, 4, 5]
global_batch_tokens = 16777216
"#
);

/// The space `bench --space large` sweeps: the default space's model and knobs on three stacks,
/// twelve cluster sizes, partial recomputation and offload, and every network the catalog's
/// parts ship with among their NIC rates, five pod sizes, four oversubscriptions and both
/// topologies (600 networks over the 18 parts): 14,515,200,000 layouts, for machines that
/// sweep billions a second (an H100-class GPU takes seconds; the CPU backend of a 2-core AMD
/// EPYC took 218 s). Fixed, so that figures compare across versions; streamed in constant
/// memory like every sweep.
pub const LARGE_BENCH_SCENARIO: &str = concat!(
    bench_model!(),
    r#"
[search]
stacks = ["megatron-core-2025", "torchtitan", "deepspeed-zero3"]
counts = [256, 512, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768]
cp = [1, 2, 4, 8]
microbatch = [1, 2, 4, 8, 16]
interleave = [1, 2, 3, 4, 5]
recompute_layers = [0, 8]
offload_layers = [0, 2]
global_batch_tokens = 16777216
scale_up_domain = [4, 8, 16, 64, 72, 256, 8960]
scale_out_gbps = [25, 50, 100, 200, 300, 400, 600, 800]
pod_size = [1024, 3072, 16384, 65536, 262144]
pod_oversubscription = [1, 2, 4, 7]
topology = ["two-tier", "three-tier"]
"#
);

/// Which fixed space `bench` sweeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchSpace {
    /// 11.6 million layouts (the figures the README compares across versions).
    #[default]
    Default,
    /// 14,515,200,000 layouts with the network axes (see [`LARGE_BENCH_SCENARIO`]).
    Large,
}

/// One backend's figures.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BenchResult {
    pub backend: String,
    pub adapter: Option<String>,
    /// The GPU adapter's driver and its version, as wgpu reports them.
    pub driver: Option<String>,
    pub elapsed_s: f64,
    /// Every decoded layout, valid or not.
    pub layouts_per_s: f64,
    /// Layouts that passed the validity checks and fit.
    pub valid_layouts_per_s: f64,
    /// Shares of the GPU run's time: kernels, readback, host merging.
    pub gpu_time_fraction: Option<f64>,
    pub readback_time_fraction: Option<f64>,
    pub host_time_fraction: Option<f64>,
    pub counts: Counts,
}

/// One backend's figures for `--uncertainty`: the bench space's top layouts re-priced under
/// drawn assumptions (each draw resolves the space from its catalog, then prices them).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct DrawBenchResult {
    pub backend: String,
    pub adapter: Option<String>,
    pub draws: usize,
    /// Layouts re-priced in each draw.
    pub candidates: usize,
    pub elapsed_s: f64,
    pub draws_per_s: f64,
}

/// One backend's pruned sweep of the bench space beside its exhaustive one: the same top 20,
/// found without evaluating the layouts whose block's bound could not enter it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PrunedBenchResult {
    pub backend: String,
    pub elapsed_s: f64,
    /// Layouts evaluated, and skipped unseen.
    pub evaluated: u64,
    pub pruned: u64,
    /// The space covered per second (evaluated and pruned).
    pub layouts_per_s: f64,
    /// The exhaustive sweep's elapsed time over this one's.
    pub speedup: f64,
    /// Whether its top 20 is the exhaustive sweep's (it must be).
    pub same_top: bool,
}

/// The machine a bench ran on, so that figures from different machines can be told apart.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BenchMachine {
    /// The CPU's model name (from /proc/cpuinfo on Linux, sysctl on macOS; "unknown" elsewhere).
    pub cpu_model: String,
    /// Logical cores the operating system offers.
    pub logical_cores: usize,
    /// Threads the CPU engine ran on (rayon's pool: all logical cores unless RAYON_NUM_THREADS).
    pub cpu_engine_threads: usize,
    /// The widest SIMD extension the CPU has (avx512f, avx2, sse4.2, sse2, neon) and its width.
    pub simd: String,
    pub simd_bits: u32,
    /// The widest SIMD extension the binary was compiled for: the CPU engine's code uses no
    /// wider one (build with RUSTFLAGS="-C target-cpu=native" to use all of `simd`).
    pub compiled_simd: String,
    pub os: String,
    pub arch: String,
}

impl BenchMachine {
    /// This machine.
    pub fn detect() -> BenchMachine {
        let (simd, simd_bits) = detected_simd();
        BenchMachine {
            cpu_model: cpu_model(),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_engine_threads: rayon::current_num_threads(),
            simd: simd.into(),
            simd_bits,
            compiled_simd: compiled_simd().into(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        }
    }
}

fn cpu_model() -> String {
    let from_cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Model"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let from_sysctl = || {
        std::process::Command::new("sysctl")
            .args(["-n", "machdep.cpu.brand_string"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    from_cpuinfo
        .or_else(|| cfg!(target_os = "macos").then(from_sysctl).flatten())
        .unwrap_or_else(|| "unknown".into())
}

/// The widest SIMD extension this CPU reports, and its width in bits.
fn detected_simd() -> (&'static str, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return ("avx512f", 512);
        }
        if std::is_x86_feature_detected!("avx2") {
            return ("avx2", 256);
        }
        if std::is_x86_feature_detected!("sse4.2") {
            return ("sse4.2", 128);
        }
        ("sse2", 128)
    }
    #[cfg(target_arch = "aarch64")]
    {
        ("neon", 128)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        ("none", 0)
    }
}

/// The widest SIMD extension the binary was compiled to use.
fn compiled_simd() -> &'static str {
    if cfg!(target_feature = "avx512f") {
        "avx512f"
    } else if cfg!(target_feature = "avx2") {
        "avx2"
    } else if cfg!(target_feature = "sse4.2") {
        "sse4.2"
    } else if cfg!(target_feature = "sse2") {
        "sse2"
    } else if cfg!(target_feature = "neon") {
        "neon"
    } else {
        "none"
    }
}

/// What `bench` reports.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BenchReport {
    pub space_size: u64,
    pub machine: BenchMachine,
    /// The headline: the fastest backend's rate of valid layouts (priced: they pass the
    /// checks and fit), the work a sweep is for.
    pub valid_layouts_per_s: f64,
    /// The fastest backend's rate of all decoded layouts, valid or not.
    pub layouts_per_s: f64,
    pub results: Vec<BenchResult>,
    /// Each backend's pruned sweep of the same space (the headline counts exhaustive ones).
    pub pruned: Vec<PrunedBenchResult>,
    /// Draws per second per backend (filled by the layer that owns the draws).
    pub draws: Vec<DrawBenchResult>,
    pub notes: Vec<String>,
}

/// The bench space.
pub fn bench_space() -> SearchSpace {
    space_of(BenchSpace::Default)
}

/// The fixed space `bench --space` names.
pub fn space_of(which: BenchSpace) -> SearchSpace {
    let text = match which {
        BenchSpace::Default => BENCH_SCENARIO,
        BenchSpace::Large => LARGE_BENCH_SCENARIO,
    };
    let file = ScenarioFile::parse(text, "bench").expect("the bench scenario parses");
    SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "bench")
        .expect("the bench scenario resolves")
}

/// `run` with a progress bar over `total` layouts labelled `label` on a terminal, which the
/// sweep ticks with the layouts it has done.
fn with_progress<T>(total: u64, label: String, run: impl FnOnce(&(dyn Fn(u64, f64) + Sync)) -> T) -> T {
    let bar = progress_bar(total);
    if let Some(bar) = &bar {
        bar.set_message(label);
    }
    let result = run(&|n, _| {
        if let Some(bar) = &bar {
            bar.inc(n)
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    result
}

/// Measure the backends asked for.
pub fn run_bench(backend: Option<Backend>, which: BenchSpace) -> Result<BenchReport, Error> {
    let space = space_of(which);
    let range = 0..space.size;
    let mut results = vec![];
    let mut pruned = vec![];
    let mut notes = vec![];
    // A pruned sweep timed against the exhaustive one of `elapsed_s` and top `top`.
    let timed_pruned =
        |backend: &str, elapsed_s: f64, top: &[Ranked], sweep: &dyn Fn() -> Option<Partial>| {
            let clock = std::time::Instant::now();
            let p = sweep()?;
            let t = clock.elapsed().as_secs_f64();
            Some(PrunedBenchResult {
                backend: backend.into(),
                elapsed_s: t,
                evaluated: p.counts.evaluated,
                pruned: p.counts.pruned,
                layouts_per_s: (p.counts.evaluated + p.counts.pruned) as f64 / t,
                speedup: elapsed_s / t,
                same_top: p.top.into_sorted() == top,
            })
        };
    if matches!(backend, None | Some(Backend::Cpu)) {
        let clock = std::time::Instant::now();
        let p = with_progress(space.size, "cpu".into(), |tick| {
            sweep_cpu(&space, range.clone(), 20, false, tick)
        });
        let t = clock.elapsed().as_secs_f64();
        let top = p.top.clone().into_sorted();
        pruned.extend(timed_pruned("cpu", t, &top, &|| {
            Some(sweep_cpu(&space, range.clone(), 20, true, &|_, _| {}))
        }));
        results.push(BenchResult {
            backend: "cpu".into(),
            adapter: Some(format!("{} threads", rayon::current_num_threads())),
            driver: None,
            elapsed_s: t,
            layouts_per_s: p.counts.evaluated as f64 / t,
            valid_layouts_per_s: p.counts.valid as f64 / t,
            gpu_time_fraction: None,
            readback_time_fraction: None,
            host_time_fraction: None,
            counts: p.counts,
        });
    }
    if matches!(backend, None | Some(Backend::Gpu) | Some(Backend::Auto)) {
        match select_adapters().and_then(|a| GpuEngine::new(&a[0])) {
            Ok(engine) => {
                // One small sweep first: the driver compiles the pipelines at first dispatch.
                let _ = engine.sweep(&space, 0..4096, 20, false, &|_, _| {});
                let clock = std::time::Instant::now();
                let swept = with_progress(space.size, format!("gpu ({})", engine.name()), |tick| {
                    engine.sweep(&space, range.clone(), 20, false, tick)
                });
                match swept {
                    Ok((p, timing)) => {
                        let t = clock.elapsed().as_secs_f64();
                        let top = p.top.clone().into_sorted();
                        pruned.extend(timed_pruned("gpu", t, &top, &|| {
                            engine
                                .sweep(&space, range.clone(), 20, true, &|_, _| {})
                                .ok()
                                .map(|(p, _)| p)
                        }));
                        results.push(BenchResult {
                            backend: "gpu".into(),
                            adapter: Some(engine.name()),
                            driver: Some(
                                format!("{} {}", engine.info.driver, engine.info.driver_info)
                                    .trim()
                                    .to_string(),
                            ),
                            elapsed_s: t,
                            layouts_per_s: p.counts.evaluated as f64 / t,
                            valid_layouts_per_s: p.counts.valid as f64 / t,
                            gpu_time_fraction: Some(timing.gpu_s / t),
                            readback_time_fraction: Some(timing.readback_s / t),
                            host_time_fraction: Some(timing.host_s / t),
                            counts: p.counts,
                        });
                    }
                    Err(f) => notes.push(format!("GPU bench failed: {}", f.message)),
                }
            }
            Err(message) => notes.push(format!("no GPU measured: {message}")),
        }
    }
    if results.is_empty() {
        return Err(Error::Usage(format!(
            "bench measured nothing: {}",
            notes.join("; ")
        )));
    }
    let fastest = |rate: fn(&BenchResult) -> f64| results.iter().map(rate).fold(0.0, f64::max);
    Ok(BenchReport {
        space_size: space.size,
        machine: BenchMachine::detect(),
        valid_layouts_per_s: fastest(|r| r.valid_layouts_per_s),
        layouts_per_s: fastest(|r| r.layouts_per_s),
        results,
        pruned,
        draws: vec![],
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spaces are fixed: a change to the catalog or the axes that resizes them breaks the
    /// comparison of figures across versions, and says so here.
    #[test]
    fn the_bench_spaces_keep_their_sizes_and_the_large_one_spans_networks() {
        assert_eq!(space_of(BenchSpace::Default).size, 11_612_160);
        let large = space_of(BenchSpace::Large);
        assert_eq!(large.accelerators.len(), 600);
        assert_eq!(large.size, 14_515_200_000);
        let networks = |id: &str| large.accelerators.iter().filter(|a| a.spec.id == id).count();
        // Two NIC rates x five pods x four oversubscriptions; TPU v6e in three slice sizes.
        assert_eq!(networks("h100-sxm"), 40);
        assert_eq!(networks("tpu-v6e"), 60);
        assert!(large.left_out.is_empty(), "{:?}", large.left_out);
    }
}
