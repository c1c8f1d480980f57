//! The sweep driver: picks the backend, splits the index space over adapters and shards, shows
//! progress, falls back to the CPU when a GPU fails, and builds the report.

use super::cpu::sweep_cpu;
use super::gpu::{select_adapters, GpuTimings, Outcome};
use super::{objective_value, top_entry, Counts, Partial, TopEntry};
use crate::engine::search::{Objective, SearchSpace};
use crate::error::Error;
use crate::model::run::Estimate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Where layouts are evaluated.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The f64 model on every core.
    Cpu,
    /// The WGSL shaders on the best adapter (or every adapter with `--adapters all`),
    /// software adapters included.
    Gpu,
    /// A hardware GPU if one is found, otherwise the CPU (a software adapter such as llvmpipe is
    /// slower than the CPU backend on the same machine, so auto does not pick it).
    Auto,
}

/// Which adapters a GPU sweep uses.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Adapters {
    /// The best adapter (see `clustersweep adapters`).
    Best,
    /// Every usable adapter, each taking an equal slice of the index space.
    All,
}

/// What the user asked of a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub backend: Backend,
    pub adapters: Adapters,
    pub top: usize,
    /// `(k, n)`: evaluate the k-th (1-based) of n equal slices of the index space.
    pub shard: Option<(u64, u64)>,
    /// Draw a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// Let the engines skip layouts whose block's bound cannot enter the top k (the same top
    /// k; fewer layouts evaluated, the rest counted as pruned): the CPU a block at a time, the
    /// GPU a layout at a time against its running threshold.
    pub prune: bool,
}

/// Everything `sweep --json` prints, and what `merge` reads back.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SweepReport {
    pub model: String,
    pub objective: String,
    /// A hash of everything that defines the space; merged parts must share it.
    pub space_fingerprint: String,
    pub space_size: u64,
    /// The slice of the index space evaluated: `[start, end)` (for a merge, the span of its
    /// parts; `slices` lists what they cover).
    pub range: [u64; 2],
    /// The slices `[start, end)` evaluated, ascending and disjoint: one for a sweep, one per
    /// part for a merge.
    #[serde(default)]
    pub slices: Vec<[u64; 2]>,
    /// The `--top` the run kept: a merge can rank no deeper than its shallowest part.
    #[serde(default)]
    pub top_k: usize,
    pub shard: Option<String>,
    pub counts: Counts,
    pub elapsed_s: f64,
    pub layouts_per_s: f64,
    pub valid_layouts_per_s: f64,
    /// "cpu", "gpu", or "gpu+cpu" where the CPU finished what a GPU could not.
    pub backend: String,
    /// Layouts each backend evaluated.
    #[serde(default)]
    pub layouts_by_backend: BTreeMap<String, u64>,
    pub adapters: Vec<String>,
    pub gpu_timings: Option<GpuTimings>,
    pub notes: Vec<String>,
    pub top: Vec<TopEntry>,
    /// With `--uncertainty`: how the top layouts rank across draws of the assumptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<Ranking>,
    /// The confidence of the top entries' intervals (`--confidence`), None until they are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_confidence: Option<f64>,
}

/// FNV-1a over the space's defining data: model, stacks (with their training settings), accelerators (with every resolved
/// number), axes and objective.
pub fn fingerprint(space: &SearchSpace) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{}",
        space.model,
        space
            .stacks
            .iter()
            .map(|st| (&st.spec.id, st.training))
            .collect::<Vec<_>>(),
        space
            .accelerators
            .iter()
            .map(|a| (&a.spec.id, a.hardware, a.economics))
            .collect::<Vec<_>>(),
        space.axes,
        space.global_batch_bound,
        space.objective.name()
    );
    fnv1a_hex(&text)
}

/// FNV-1a (64 bit) of `text` in hex: a fingerprint that is the same on every machine and
/// release (std's hasher promises neither).
pub fn fnv1a_hex(text: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// The slice of `size` that shard `k` of `n` (1-based) covers.
pub fn shard_range(size: u64, k: u64, n: u64) -> Range<u64> {
    let at = |i: u64| ((size as u128 * i as u128) / n as u128) as u64;
    at(k - 1)..at(k)
}

/// Parse `K/N` (1 <= K <= N).
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard {text}: expected K/N with 1 <= K <= N, e.g. --shard 3/8");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// A progress bar over `total` layouts on stderr, None when stderr is not a terminal: percent,
/// elapsed, rate and ETA, then the message (sweep: the best so far; bench: the backend).
pub fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {percent}% of {human_len} layouts, {elapsed} elapsed, {per_sec}, eta {eta} {msg}",
            )
            .expect("a valid template"),
        );
        bar
    })
}

struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicU64,
    /// The best objective so far, as f64 bits.
    best: AtomicU64,
    objective: Objective,
}

impl Progress {
    fn new(total: u64, show: bool, objective: Objective) -> Progress {
        Progress {
            bar: show.then(|| progress_bar(total)).flatten(),
            done: AtomicU64::new(0),
            best: AtomicU64::new(f64::INFINITY.to_bits()),
            objective,
        }
    }
    /// `n` more layouts done; `best` the best objective among them.
    fn advance(&self, n: u64, best: f64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        let previous = self
            .best
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (best < f64::from_bits(b)).then_some(best.to_bits())
            })
            .unwrap_or_else(|b| b);
        if let Some(bar) = &self.bar {
            bar.inc(n);
            let now = best.min(f64::from_bits(previous));
            if now.is_finite() {
                bar.set_message(format!("best {}", describe_objective(self.objective, now)));
            }
        }
    }
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// An objective value in its unit, for the progress bar.
fn describe_objective(objective: Objective, v: f64) -> String {
    match objective {
        Objective::Time => format!("{} to train", crate::units::human_duration(v)),
        Objective::Cost => crate::units::human_usd(v),
        Objective::Energy => format!("{v:.0} MWh"),
        Objective::Mfu => format!("MFU {:.1} %", -100.0 * v),
    }
}

/// What a sweep keeps: the best `k`, skipping what cannot enter them or not (see
/// [`SweepOptions::prune`]).
#[derive(Clone, Copy, Debug)]
pub struct Keep {
    pub k: usize,
    pub prune: bool,
}

/// Sweep one range on the GPU engine, finishing on the CPU if it fails (and saying so in
/// `notes`), with the layouts the CPU took over. The sweep and the planner both go through here.
pub fn gpu_then_cpu(
    engine: &GpuEngine,
    space: &SearchSpace,
    range: Range<u64>,
    keep: Keep,
    progress: &(dyn Fn(u64, f64) + Sync),
    notes: &Mutex<Vec<String>>,
    timings: &Mutex<GpuTimings>,
) -> (Partial, u64) {
    let Keep { k, prune } = keep;
    match engine.sweep(space, range.clone(), k, prune, progress) {
        Ok((partial, t)) => {
            let mut all = timings.lock().expect("timings lock");
            all.gpu_s += t.gpu_s;
            all.readback_s += t.readback_s;
            all.host_s += t.host_s;
            (partial, 0)
        }
        Err(failure) => {
            notes.lock().expect("notes lock").push(format!(
                "{} stopped at index {} ({}); the CPU finished the remaining {} layouts",
                engine.name(),
                failure.completed,
                failure.message,
                range.end - failure.completed
            ));
            let taken_over = range.end - failure.completed;
            let partial =
                failure
                    .partial
                    .merge(sweep_cpu(space, failure.completed..range.end, k, prune, progress));
            (partial, taken_over)
        }
    }
}

/// The engine handle the driver opens ([`open_engines`]) and its callers pass back: analysis
/// holds one, never drives it.
pub use super::gpu::GpuEngine;

/// The best `k` layouts of `range` of `space`: on `engine`, finishing on the CPU if it fails
/// (saying so in `notes`), or on the CPU when there is none, pruning as `prune` says (see
/// [`SweepOptions::prune`]). The planner's pairs go through here.
pub fn sweep_range(
    engine: Option<&GpuEngine>,
    space: &SearchSpace,
    range: Range<u64>,
    k: usize,
    prune: bool,
    notes: &Mutex<Vec<String>>,
) -> Partial {
    match engine {
        Some(e) => {
            gpu_then_cpu(
                e,
                space,
                range,
                Keep { k, prune },
                &|_, _| {},
                notes,
                &Mutex::new(GpuTimings::default()),
            )
            .0
        }
        None => sweep_cpu(space, range, k, prune, &|_, _| {}),
    }
}

/// What a re-priced layout must keep to count, from its facility power (MW), cost (USD) and
/// time to train (s): a plan's constraints; `|_, _, _| true` for a sweep's.
pub type KeepPriced<'a> = &'a (dyn Fn(f64, f64, f64) -> bool + Sync);

/// The objective (each space's own) of each of `indices` in each of `spaces` (one scenario
/// resolved from several drawn catalogs), per space: on `engine` in f32 (the draws stacked into
/// as few dispatches as its limits allow), or on the CPU in f64, the spaces in parallel, when
/// there is none; infinite for a layout that breaks a rule, does not fit or `keep` rejects.
pub fn price_draws(
    engine: Option<&GpuEngine>,
    spaces: &[SearchSpace],
    indices: &[u64],
    keep: KeepPriced,
) -> Result<Vec<Vec<f64>>, Error> {
    match engine {
        Some(gpu) => {
            let spaces: Vec<&SearchSpace> = spaces.iter().collect();
            let metrics = gpu.evaluate_draws(&spaces, indices).map_err(Error::Internal)?;
            Ok(metrics
                .iter()
                .map(|draw| {
                    draw.iter()
                        .map(|m| {
                            let kept = keep(m.power_mw as f64, m.cost_usd as f64, m.time_to_train_s as f64);
                            match Outcome::from_code(m.outcome) {
                                Some(Outcome::Valid) if kept => m.objective as f64,
                                _ => f64::INFINITY,
                            }
                        })
                        .collect()
                })
                .collect())
        }
        None => Ok(spaces
            .par_iter()
            .map(|space| {
                indices
                    .iter()
                    .map(|i| {
                        cpu_objective(space, *i, space.objective, &|e| {
                            keep(e.power_mw, e.cost_usd, e.time_to_train_s)
                        })
                    })
                    .collect()
            })
            .collect()),
    }
}

/// The objective of the layout at `index` of `space`, priced in f64; infinite when it no longer
/// fits or breaks a rule there, or `keep` rejects it.
pub fn cpu_objective(
    space: &SearchSpace,
    index: u64,
    objective: Objective,
    keep: &dyn Fn(&Estimate) -> bool,
) -> f64 {
    let Ok(c) = space.candidate(index) else {
        return f64::INFINITY;
    };
    let e = space.estimate_of(&c);
    if e.fits && keep(&e) {
        objective_value(objective, &e)
    } else {
        f64::INFINITY
    }
}

/// The GPU engines `backend` asks for: none for `cpu`; for `auto`, hardware adapters only
/// (with one line on stderr when only a software adapter or none is found); for `gpu`, any
/// adapter, and an error when none opens. Adapters that fail to open are noted in `notes`.
pub fn open_engines(
    backend: Backend,
    adapters: Adapters,
    notes: &Mutex<Vec<String>>,
) -> Result<Vec<GpuEngine>, Error> {
    if backend == Backend::Cpu {
        return Ok(vec![]);
    }
    let found = match select_adapters() {
        Ok(found) => found,
        Err(message) => {
            if backend == Backend::Gpu {
                return Err(Error::Usage(format!("--backend gpu: {message}")));
            }
            eprintln!("note: {message}: sweeping on the CPU");
            return Ok(vec![]);
        }
    };
    let hardware: Vec<&wgpu::Adapter> = found
        .iter()
        .filter(|a| backend == Backend::Gpu || a.get_info().device_type != wgpu::DeviceType::Cpu)
        .collect();
    if hardware.is_empty() {
        eprintln!(
            "note: only a software adapter ({}) is available, slower here than the CPU backend: sweeping on the CPU (--backend gpu uses it anyway)",
            found[0].get_info().name
        );
    }
    let take = if adapters == Adapters::All {
        hardware.len()
    } else {
        hardware.len().min(1)
    };
    let mut engines = vec![];
    for a in hardware.into_iter().take(take) {
        match GpuEngine::new(a) {
            Ok(e) => engines.push(e),
            Err(message) => notes.lock().expect("notes lock").push(message),
        }
    }
    if engines.is_empty() && backend == Backend::Gpu {
        return Err(Error::Usage(format!(
            "--backend gpu: no usable adapter could be opened{}",
            notes
                .lock()
                .expect("notes lock")
                .first()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        )));
    }
    Ok(engines)
}

/// Run a sweep as the options ask.
pub fn run_sweep(space: &SearchSpace, opts: &SweepOptions) -> Result<SweepReport, Error> {
    let range = match opts.shard {
        Some((k, n)) => shard_range(space.size, k, n),
        None => 0..space.size,
    };
    let k = opts.top.max(1);
    let keep = Keep { k, prune: opts.prune };
    let notes = Mutex::new(
        space
            .left_out
            .iter()
            .map(|why| format!("left out {why}"))
            .collect(),
    );
    let timings = Mutex::new(GpuTimings::default());
    let progress = Progress::new(range.end - range.start, opts.progress, space.objective);

    let engines = open_engines(opts.backend, opts.adapters, &notes)?;

    let clock = std::time::Instant::now();
    let taken_over = std::sync::atomic::AtomicU64::new(0);
    let partial = if engines.is_empty() {
        sweep_cpu(space, range.clone(), k, opts.prune, &|n, best| {
            progress.advance(n, best)
        })
    } else {
        // Equal slices of the range, one per adapter, in parallel.
        let n = engines.len() as u64;
        let size = range.end - range.start;
        std::thread::scope(|scope| {
            let handles: Vec<_> = engines
                .iter()
                .enumerate()
                .map(|(i, engine)| {
                    let part = range.start + size * i as u64 / n..range.start + size * (i as u64 + 1) / n;
                    let (progress, notes, timings, taken_over) = (&progress, &notes, &timings, &taken_over);
                    let advance = move |n, best| progress.advance(n, best);
                    scope.spawn(move || {
                        let (partial, cpu) =
                            gpu_then_cpu(engine, space, part, keep, &advance, notes, timings);
                        taken_over.fetch_add(cpu, std::sync::atomic::Ordering::Relaxed);
                        partial
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a sweep thread does not panic"))
                .fold(Partial::new(k), Partial::merge)
        })
    };
    let elapsed_s = clock.elapsed().as_secs_f64();
    progress.finish();

    let mut top = vec![];
    for (i, r) in partial.top.into_sorted().iter().enumerate() {
        let Some(entry) = top_entry(space, i + 1, r) else {
            continue;
        };
        // Inputs are range-checked where they are read; a non-finite number here is a bug,
        // never a null in the report.
        if let Some(term) = entry.estimate.non_finite_term() {
            return Err(Error::Internal(format!(
                "ranked layout {} (index {}) has a non-finite {term}",
                i + 1,
                r.index
            )));
        }
        top.push(entry);
    }
    let top = ranked_by_printed_objective(top);
    let counts = partial.counts;
    let cpu_layouts = if engines.is_empty() {
        counts.evaluated
    } else {
        taken_over.into_inner()
    };
    let mut layouts_by_backend = BTreeMap::new();
    if cpu_layouts > 0 {
        layouts_by_backend.insert("cpu".to_string(), cpu_layouts);
    }
    if counts.evaluated > cpu_layouts {
        layouts_by_backend.insert("gpu".to_string(), counts.evaluated - cpu_layouts);
    }
    Ok(SweepReport {
        model: space.model_name.clone(),
        objective: space.objective.name().to_string(),
        space_fingerprint: fingerprint(space),
        space_size: space.size,
        range: [range.start, range.end],
        slices: vec![[range.start, range.end]],
        top_k: k,
        shard: opts.shard.map(|(k, n)| format!("{k}/{n}")),
        counts,
        elapsed_s,
        layouts_per_s: counts.evaluated as f64 / elapsed_s,
        valid_layouts_per_s: counts.valid as f64 / elapsed_s,
        backend: backend_name(&layouts_by_backend),
        layouts_by_backend,
        adapters: engines.iter().map(GpuEngine::name).collect(),
        gpu_timings: (!engines.is_empty()).then(|| *timings.lock().expect("timings lock")),
        notes: notes.into_inner().expect("notes lock"),
        top,
        uncertainty: None,
        interval_confidence: None,
    })
}

/// The entries in the order of the objective they print (the f64 re-estimate), ties by index,
/// ranks renumbered: a GPU ranks in f32, and at relative gaps near 1e-7 its order can differ
/// from the f64 figures printed beside it.
pub fn ranked_by_printed_objective(mut top: Vec<TopEntry>) -> Vec<TopEntry> {
    top.sort_by(|a, b| a.objective.total_cmp(&b.objective).then(a.index.cmp(&b.index)));
    for (i, entry) in top.iter_mut().enumerate() {
        entry.rank = i + 1;
    }
    top
}

/// "cpu", "gpu", or "gpu+cpu": the backends that evaluated layouts.
fn backend_name(layouts_by_backend: &BTreeMap<String, u64>) -> String {
    match (
        layouts_by_backend.contains_key("gpu"),
        layouts_by_backend.contains_key("cpu"),
    ) {
        (true, true) => "gpu+cpu".into(),
        (true, false) => "gpu".into(),
        _ => "cpu".into(),
    }
}

/// Merge shard reports into the report one run over their union gives. The parts must sweep
/// one space with one objective, cover disjoint slices, and together the whole space unless
/// `allow_partial` (then a note says what is missing); the merge ranks no deeper than its
/// shallowest part's `--top`.
pub fn merge_reports(
    parts: Vec<SweepReport>,
    top: Option<usize>,
    allow_partial: bool,
) -> Result<SweepReport, String> {
    let first = parts.first().ok_or("nothing to merge")?.clone();
    for p in &parts {
        if p.space_fingerprint != first.space_fingerprint || p.objective != first.objective {
            return Err(format!(
                "the parts sweep different spaces or objectives ({} by {} and {} by {}): merge parts of one scenario and objective",
                first.space_fingerprint, first.objective, p.space_fingerprint, p.objective
            ));
        }
    }
    // Reports written before slices were recorded carry their range only.
    let slices_of = |p: &SweepReport| {
        if p.slices.is_empty() {
            vec![p.range]
        } else {
            p.slices.clone()
        }
    };
    let mut ranges: Vec<[u64; 2]> = parts.iter().flat_map(slices_of).collect();
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1][0] < w[0][1] {
            return Err(format!(
                "the parts overlap ({:?} and {:?}): each shard once",
                w[0], w[1]
            ));
        }
    }
    let mut missing = vec![];
    let mut at = 0;
    for r in ranges
        .iter()
        .chain(std::iter::once(&[first.space_size, first.space_size]))
    {
        if r[0] > at {
            missing.push([at, r[0]]);
        }
        at = at.max(r[1]);
    }
    if !missing.is_empty() && !allow_partial {
        return Err(format!(
            "the parts leave {} of {} layouts unswept (slices {:?}): add the missing shards, or merge with --allow-partial",
            missing.iter().map(|m| m[1] - m[0]).sum::<u64>(),
            first.space_size,
            missing
        ));
    }
    // A part kept only its best `top_k`: deeper than the shallowest part, the ranking would
    // miss what that part dropped.
    let shallowest = parts
        .iter()
        .map(|p| if p.top_k > 0 { p.top_k } else { p.top.len() })
        .min()
        .unwrap_or(0);
    let k = match top {
        Some(k) if k > shallowest => {
            return Err(format!(
                "--top {k}: a part kept only its best {shallowest}; merge with --top {shallowest} at most, or rerun the parts with a larger --top"
            ))
        }
        Some(k) => k,
        None => shallowest,
    };
    let mut counts = Counts::default();
    let mut entries: Vec<TopEntry> = vec![];
    let mut notes = vec![];
    let mut elapsed: f64 = 0.0;
    for p in parts.iter() {
        counts.add(&p.counts);
        entries.extend(p.top.iter().cloned());
        notes.extend(p.notes.iter().cloned());
        elapsed = elapsed.max(p.elapsed_s);
    }
    entries.sort_by(|a, b| a.objective.total_cmp(&b.objective).then(a.index.cmp(&b.index)));
    entries.truncate(k);
    for (i, e) in entries.iter_mut().enumerate() {
        e.rank = i + 1;
    }
    let covered: u64 = ranges.iter().map(|r| r[1] - r[0]).sum();
    if covered < first.space_size {
        notes.push(format!(
            "the parts cover {covered} of {} layouts (missing slices {missing:?}): the ranking is of those only",
            first.space_size
        ));
    }
    let mut layouts_by_backend: BTreeMap<String, u64> = BTreeMap::new();
    for p in &parts {
        if p.layouts_by_backend.is_empty() {
            // A report from before backends were counted: all its layouts on its backend.
            *layouts_by_backend.entry(p.backend.clone()).or_default() += p.counts.evaluated;
        }
        for (b, n) in &p.layouts_by_backend {
            *layouts_by_backend.entry(b.clone()).or_default() += n;
        }
    }
    let mut adapters: Vec<String> = parts.iter().flat_map(|p| p.adapters.clone()).collect();
    adapters.sort();
    adapters.dedup();
    Ok(SweepReport {
        range: [ranges[0][0], ranges[ranges.len() - 1][1]],
        slices: merge_adjacent(&ranges),
        top_k: k,
        shard: None,
        counts,
        elapsed_s: elapsed,
        layouts_per_s: counts.evaluated as f64 / elapsed,
        valid_layouts_per_s: counts.valid as f64 / elapsed,
        backend: backend_name(&layouts_by_backend),
        layouts_by_backend,
        adapters,
        gpu_timings: None,
        notes,
        // A part's ranking across draws is over its own top layouts, not the merged ones.
        top: entries
            .into_iter()
            .map(|t| TopEntry {
                p_best: None,
                tied_with_best: None,
                ..t
            })
            .collect(),
        uncertainty: None,
        ..first
    })
}

/// Sorted disjoint slices with touching neighbours joined.
fn merge_adjacent(ranges: &[[u64; 2]]) -> Vec<[u64; 2]> {
    let mut out: Vec<[u64; 2]> = vec![];
    for r in ranges {
        match out.last_mut() {
            Some(last) if last[1] == r[0] => last[1] = r[1],
            _ => out.push(*r),
        }
    }
    out
}

/// How candidates rank across draws of the assumptions (`--uncertainty`; made by
/// `uncertainty::rank_draws`).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Ranking {
    pub draws: usize,
    pub seed: u64,
    /// Per candidate: the share of draws in which it is best by the objective (feasible and
    /// lowest; the earlier candidate wins an exact tie). Sums to at most 1: a draw in which no
    /// candidate is feasible counts for none.
    pub p_best: Vec<f64>,
    /// Per candidate: the share of draws in which it beats the first (central best) candidate.
    pub p_beats_first: Vec<f64>,
    /// Candidates statistically tied with the first: those that beat it in at least
    /// `(1 - confidence) / 2` of the draws (the first included).
    pub tied_with_first: Vec<usize>,
    pub confidence: f64,
}

impl Ranking {
    /// Candidate `i`'s marks, as its table row and JSON entry carry them: its p_best, and
    /// whether it is tied with the best (the best itself only when another is tied with it).
    pub fn marks(&self, i: usize) -> (Option<f64>, Option<bool>) {
        let tied = self.tied_with_first.len() > 1 && self.tied_with_first.contains(&i);
        (self.p_best.get(i).copied(), Some(tied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_tile_the_space() {
        let size = 1_000_003;
        let mut next = 0;
        for k in 1..=7 {
            let r = shard_range(size, k, 7);
            assert_eq!(r.start, next);
            next = r.end;
        }
        assert_eq!(next, size);
    }

    /// Regression: at near-ties (relative gap 4e-8) the GPU's f32 ranking printed its top-k
    /// out of the order of the f64 objectives beside it.
    #[test]
    fn near_ties_are_printed_in_the_order_of_the_printed_objective() {
        let entry = |rank: usize, index: u64, objective: f64| TopEntry {
            rank,
            index,
            objective,
            layout: crate::engine::sweep::SweepLayout {
                accelerator: "h100-sxm".into(),
                network: crate::input::catalog::Network {
                    scale_up_domain: 8,
                    scale_out_gbps: 400.0,
                    pod_size: 3072.0,
                    pod_oversubscription: 7.0,
                    topology: crate::input::catalog::Topology::TwoTier,
                },
                stack: "megatron-core-2025".into(),
                count: 8,
                tp: 8,
                pp: 1,
                dp: 1,
                cp: 1,
                ep: 1,
                etp: 8,
                microbatch: 1,
                interleave: 1,
                recompute: crate::model::Recompute::None,
                sequence_parallel: true,
                zero: 1,
                recompute_layers: 0,
                offload_layers: 0,
                global_batch: 8,
            },
            estimate: Default::default(),
            step_time_s_interval: None,
            time_to_train_s_interval: None,
            p_best: None,
            tied_with_best: None,
        };
        // As the GPU ranked them: f32 could not tell 1e7 from 1e7 * (1 + 4e-8).
        let gpu_order = vec![
            entry(1, 7, 1e7 * (1.0 + 4e-8)),
            entry(2, 9, 1e7),
            entry(3, 3, 1e7),
        ];
        let printed = ranked_by_printed_objective(gpu_order);
        let order: Vec<(usize, u64)> = printed.iter().map(|e| (e.rank, e.index)).collect();
        assert_eq!(order, vec![(1, 3), (2, 9), (3, 7)]);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("3/8"), Ok((3, 8)));
        assert!(parse_shard("0/8").is_err());
        assert!(parse_shard("9/8").is_err());
        assert!(parse_shard("3").unwrap_err().contains("--shard"));
    }
}
