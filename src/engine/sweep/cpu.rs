//! The CPU engine: the f64 model over all cores (rayon). Twin of `shaders/sweep.wgsl`.
//!
//! The index range is cut into chunks; each chunk walks its indices in order with an odometer
//! over the digits and keeps one [`Profile`] per set of per-layer knobs (the outer eight axes),
//! so the per-layer model runs once per few hundred layouts and each layout pays only for the
//! stage-level functions. Blocks of layouts that share the digits down to the pipeline depth
//! are counted at once where their degrees fail, and skipped where their bound cannot enter
//! the top k ([`evaluate_range`]). Chunks merge their counts and top-k.

use super::{objective_floor, objective_value, Partial, Ranked};
use crate::engine::search::{
    Candidate, Invalid, SearchSpace, AXIS_INTERLEAVE, AXIS_PP, AXIS_RECOMPUTE_LAYERS, N_AXES, PROFILE_AXES,
};
use crate::model::profile::{profile, Profile};
use crate::model::run::{estimate_with_memory, layout_memory, run_bounds, RunBounds};
use crate::model::stage::step_s_per_sequence_floor;
use crate::model::step::stage_layers;
use crate::model::{interleave_fits_layers, Layout, Training};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Indices per chunk: large enough to amortise a chunk's start, small enough to balance cores
/// and report progress often.
pub const CHUNK: u64 = 1 << 18;

/// Whether a block's bound has been compared with the top k yet.
#[derive(Clone, Copy, PartialEq)]
enum BlockBound {
    /// Not yet: the block has had no valid layout while the top k was full.
    Unchecked,
    /// Checked: the block may hold a layout that enters.
    Kept,
}

/// Evaluate `range` of the space sequentially.
///
/// Layouts that share the digits down to the pipeline axis form a block (its inner axes are
/// interleave, ZeRO, recomputed and offloaded layers, and the batch). The degrees' verdict holds
/// for a whole block (tp, cp, count and pp are the axes it reads), so a block that fails it is
/// counted at once. With `prune`, once the top k is full, a block whose floor on the objective
/// ([`step_s_per_sequence_floor`], [`run_bounds`]) is worse than the k-th kept is skipped
/// unseen: no layout of it could enter, so the top k is the full sweep's. Its layouts are
/// counted as pruned, not as evaluated.
pub fn evaluate_range(space: &SearchSpace, range: Range<u64>, k: usize, prune: bool) -> Partial {
    let mut out = Partial::new(k);
    if range.is_empty() {
        return out;
    }
    let radices = space.radices();
    let block_size: u64 = radices[AXIS_PP + 1..].iter().product();
    let mut digits = space.digits(range.start);
    let mut cached: Option<([u32; PROFILE_AXES], Profile)> = None;
    let mut bound = BlockBound::Unchecked;
    let mut index = range.start;
    while index < range.end {
        // Layouts from `index` to its block's end (or the range's): the inner axes are the
        // index's least significant digits.
        let block_left = || (block_size - index % block_size).min(range.end - index);
        let mut step = 1;
        match space.candidate_at(&digits) {
            Err(Invalid::Degrees) => {
                step = block_left();
                out.counts.invalid_degrees += step;
                out.counts.evaluated += step;
            }
            Err(why) => {
                out.counts.count_invalid(why);
                out.counts.evaluated += 1;
            }
            Ok(c) => {
                let key: [u32; PROFILE_AXES] = digits[..PROFILE_AXES].try_into().expect("profile axes");
                let acc = &space.accelerators[c.accelerator];
                let training = space.training_for(&c);
                if !matches!(&cached, Some((k, _)) if *k == key) {
                    cached = Some((key, profile(&space.model, &training, &acc.hardware, &c.layout)));
                }
                // Borrowed, not copied: a profile is two dozen numbers and a layout reads a few.
                let p = &cached.as_ref().expect("the profile was just cached").1;
                let threshold = out.top.threshold();
                let pruned = prune && bound == BlockBound::Unchecked && threshold.is_finite() && {
                    bound = BlockBound::Kept;
                    objective_floor(space.objective, &block_bounds(space, &c, p, &training)) > threshold
                };
                if pruned {
                    step = block_left();
                    out.counts.pruned += step;
                } else {
                    out.counts.evaluated += 1;
                    // The memory first: a layout that does not fit needs no step.
                    let memory = layout_memory(p, &space.model, &training, &acc.hardware, &c.layout);
                    if memory.fits(&acc.hardware) {
                        let e = estimate_with_memory(
                            p,
                            &space.model,
                            &training,
                            &acc.hardware,
                            &acc.economics,
                            &c.layout,
                            &memory,
                        );
                        out.counts.valid += 1;
                        out.top.push(Ranked {
                            index,
                            objective: objective_value(space.objective, &e),
                        });
                    } else {
                        out.counts.did_not_fit += 1;
                    }
                }
            }
        }
        index += step;
        // Odometer: the next digits, from the innermost axis, or past the block.
        let wheel = if step > 1 {
            digits[AXIS_PP + 1..].fill(0);
            AXIS_PP
        } else {
            N_AXES - 1
        };
        for axis in (0..=wheel).rev() {
            digits[axis] += 1;
            if (digits[axis] as u64) < radices[axis] {
                if axis <= AXIS_PP {
                    bound = BlockBound::Unchecked;
                }
                break;
            }
            digits[axis] = 0;
        }
    }
    out
}

/// The floor under the step's seconds per sequence of every layout of `c`'s block, whose
/// profile is `p`: the least [`step_s_per_sequence_floor`] over the interleaves (those a layout
/// may take: a virtual stage holds at least a layer) and recomputed layers the space lists, the
/// rest of the block's axes (ZeRO, offload, the batch) adding only terms of at least zero.
/// Twin: `block_floor_s` in `shaders/sweep.wgsl`.
pub fn block_floor_s(space: &SearchSpace, c: &Candidate, p: &Profile) -> f64 {
    let mut floor = f64::INFINITY;
    for &interleave in &space.axes[AXIS_INTERLEAVE] {
        let mut layout = Layout {
            interleave,
            ..c.layout
        };
        if !interleave_fits_layers(&space.model, &layout) {
            continue;
        }
        let fullest = stage_layers(&space.model, &layout).0;
        for &recompute_layers in &space.axes[AXIS_RECOMPUTE_LAYERS] {
            layout.recompute_layers = recompute_layers;
            floor = floor.min(step_s_per_sequence_floor(p, &layout, fullest));
        }
    }
    floor
}

/// The bounds of every layout of `c`'s block (see [`run_bounds`]).
pub fn block_bounds(space: &SearchSpace, c: &Candidate, p: &Profile, training: &Training) -> RunBounds {
    let acc = &space.accelerators[c.accelerator];
    run_bounds(
        block_floor_s(space, c, p),
        c.layout.accelerators() as f64,
        p,
        &space.model,
        training,
        &acc.hardware,
        &acc.economics,
    )
}

/// Evaluate `range` on all cores; `progress` is called with the number of layouts finished
/// since its last call and the best objective among them (infinity if none ranked).
pub fn sweep_cpu(
    space: &SearchSpace,
    range: Range<u64>,
    k: usize,
    prune: bool,
    progress: &(dyn Fn(u64, f64) + Sync),
) -> Partial {
    let chunks: Vec<Range<u64>> = (range.start..range.end)
        .step_by(CHUNK as usize)
        .map(|s| s..(s + CHUNK).min(range.end))
        .collect();
    let done = AtomicU64::new(0);
    chunks
        .into_par_iter()
        .map(|chunk| {
            let n = chunk.end - chunk.start;
            let part = evaluate_range(space, chunk, k, prune);
            done.fetch_add(n, Ordering::Relaxed);
            progress(n, part.top.best().unwrap_or(f64::INFINITY));
            part
        })
        .reduce(|| Partial::new(k), Partial::merge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::search::Objective;
    use crate::input::catalog::Catalog;
    use crate::input::scenario::ScenarioFile;
    use crate::model::run::estimate;
    use crate::model::step::data_parallel_outermost;

    fn space() -> SearchSpace {
        let text = "[model]\npreset = \"llama3-8b\"\n[training]\nglobal_batch = 256\n[search]\n\
                    accelerators = [\"h100-sxm\", \"a100-80gb\", \"v100-32gb\"]\ncounts = [8, 24, 64]\n\
                    stacks = [\"megatron-core-2025\", \"llm-foundry\", \"megatron-2021\"]\n";
        let file = ScenarioFile::parse(text, "t").unwrap();
        SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "t").unwrap()
    }

    /// An MoE space whose expert all-to-all depends on more than the per-layer knobs a profile
    /// is cached by: on 1 MW sites the clusters span sites, which puts data parallelism
    /// outermost and the expert ranks `pp` apart.
    fn moe_space() -> SearchSpace {
        let text = "[model]\npreset = \"mixtral-8x22b\"\n[training]\nglobal_batch = 512\n\
                    [cluster]\nsite_power_mw = 1.0\n[search]\naccelerators = [\"h100-sxm\"]\n\
                    counts = [1024, 2048]\nep = [1, 8]\npp = [1, 4, 8]\ntp = [1, 2]\nzero = [1]\n";
        let file = ScenarioFile::parse(text, "moe").unwrap();
        SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "moe").unwrap()
    }

    /// Partial recomputation, offload, interleaves and a batch bound (the axes the pruning floor
    /// takes minima over), on a purchase price, ranked by `objective`.
    fn knob_space(objective: Objective) -> SearchSpace {
        let text = "[model]\npreset = \"llama3-8b\"\n[cluster]\npricing = \"capex\"\n\
                    [search]\nglobal_batch_tokens = 2097152\naccelerators = [\"h100-sxm\", \"a100-80gb\"]\n\
                    counts = [16, 64, 256]\ninterleave = [1, 2, 4]\nrecompute_layers = [0, 4]\n\
                    offload_layers = [0, 2]\nmicrobatch = [1, 2]\n";
        let file = ScenarioFile::parse(text, "knobs").unwrap();
        SearchSpace::resolve(&file, &Catalog::builtin(), objective, "knobs").unwrap()
    }

    fn with_objective(mut s: SearchSpace, objective: Objective) -> SearchSpace {
        s.objective = objective;
        s
    }

    #[test]
    fn pruning_keeps_the_full_sweeps_top_k() {
        let mut pruned_somewhere = 0;
        for objective in Objective::ALL {
            for s in [
                with_objective(space(), objective),
                with_objective(moe_space(), objective),
                knob_space(objective),
            ] {
                for k in [1, 7, 40] {
                    let full = evaluate_range(&s, 0..s.size, k, false);
                    let pruned = evaluate_range(&s, 0..s.size, k, true);
                    let parallel = sweep_cpu(&s, 0..s.size, k, true, &|_, _| {});
                    let top = full.top.into_sorted();
                    assert_eq!(pruned.top.into_sorted(), top, "{objective:?} k = {k}");
                    assert_eq!(
                        parallel.top.into_sorted(),
                        top,
                        "{objective:?} k = {k}, in chunks"
                    );
                    for c in [pruned.counts, parallel.counts] {
                        assert_eq!(c.evaluated + c.pruned, s.size);
                        assert_eq!(c.invalid() + c.did_not_fit + c.valid, c.evaluated);
                        assert!(c.valid <= full.counts.valid && c.valid >= top.len() as u64);
                    }
                    assert_eq!(full.counts.pruned, 0);
                    pruned_somewhere += pruned.counts.pruned;
                }
            }
        }
        assert!(
            pruned_somewhere > 0,
            "no block was pruned: the test shows nothing"
        );
    }

    /// What pruning rests on: no valid layout beats its block's bounds, fitting or not.
    #[test]
    fn no_layout_beats_its_blocks_bounds() {
        use crate::model::run::estimate_with;
        let mut checked = 0;
        for s in [knob_space(Objective::Time), moe_space(), space()] {
            for index in 0..s.size {
                let Ok(c) = s.candidate(index) else { continue };
                let acc = &s.accelerators[c.accelerator];
                let training = s.training_for(&c);
                let p = profile(&s.model, &training, &acc.hardware, &c.layout);
                let e = estimate_with(&p, &s.model, &training, &acc.hardware, &acc.economics, &c.layout);
                let floor_s = block_floor_s(&s, &c, &p);
                let per_sequence = e.step_time_s / c.global_batch as f64;
                assert!(
                    floor_s <= per_sequence * (1.0 + 1e-12),
                    "{floor_s} > {per_sequence} at {index}"
                );
                let b = block_bounds(&s, &c, &p, &training);
                let tight = 1.0 + 1e-12;
                assert!(b.time_to_train_s <= e.time_to_train_s * tight, "time at {index}");
                assert!(b.cost_usd <= e.cost_usd * tight, "cost at {index}");
                assert!(b.energy_mwh <= e.energy_mwh * tight, "energy at {index}");
                assert!(b.mfu * tight >= e.mfu, "mfu at {index}");
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn counts_add_up_and_every_outcome_occurs() {
        let s = space();
        let p = sweep_cpu(&s, 0..s.size, 10, false, &|_, _| {});
        let c = p.counts;
        assert_eq!(c.evaluated, s.size);
        assert_eq!(c.invalid() + c.did_not_fit + c.valid, c.evaluated);
        assert!(c.invalid_degrees > 0 && c.invalid_layout > 0 && c.invalid_dtype > 0 && c.invalid_stack > 0);
        assert!(c.did_not_fit > 0 && c.valid > 0, "{c:?}");
    }

    #[test]
    fn the_cached_profile_gives_the_same_numbers_as_estimate() {
        check_the_cached_profile_against_estimate(&space(), 20);
    }

    /// Regression: the expert all-to-all was priced inside the cached per-layer profile, with
    /// the profile's placeholder pipeline depth, so MoE layouts with data parallelism outermost
    /// ranked by one price and reported another.
    #[test]
    fn moe_layouts_across_pipelines_and_sites_price_as_estimate_does() {
        let s = moe_space();
        let k = 200;
        let top = evaluate_range(&s, 0..s.size, k, false).top.into_sorted();
        assert_eq!(top.len(), k);
        // The top holds layouts the old shortcut mispriced: expert ranks pp apart on a stack
        // with data parallelism outermost.
        let mispriced = top
            .iter()
            .map(|r| s.candidate(r.index).unwrap())
            .filter(|c| {
                let hw = &s.accelerators[c.accelerator].hardware;
                let outermost = data_parallel_outermost(&s.training_for(c), hw, &c.layout);
                outermost && c.layout.pp > 1 && c.layout.ep > 1
            })
            .count();
        assert!(mispriced > 0, "no layout in the top {k} depends on the stride");
        check_the_cached_profile_against_estimate(&s, k);
    }

    fn check_the_cached_profile_against_estimate(s: &SearchSpace, k: usize) {
        let p = evaluate_range(s, 0..s.size, k, false);
        for r in p.top.into_sorted() {
            let c = s.candidate(r.index).unwrap();
            let acc = &s.accelerators[c.accelerator];
            let e = estimate(
                &s.model,
                &s.training_for(&c),
                &acc.hardware,
                &acc.economics,
                &c.layout,
            );
            assert_eq!(e.time_to_train_s, r.objective);
        }
    }

    #[test]
    fn parallel_chunks_agree_with_one_sequential_pass() {
        let s = space();
        let a = evaluate_range(&s, 0..s.size, 15, false);
        let b = sweep_cpu(&s, 0..s.size, 15, false, &|_, _| {});
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.top.into_sorted(), b.top.into_sorted());
    }

    #[test]
    fn shards_merge_into_the_single_run() {
        for s in [space(), moe_space()] {
            check_shards_merge(&s);
        }
    }

    fn check_shards_merge(s: &SearchSpace) {
        let whole = evaluate_range(s, 0..s.size, 12, false);
        let third = s.size / 3;
        let merged = evaluate_range(s, 0..third, 12, false)
            .merge(evaluate_range(s, third..2 * third, 12, false))
            .merge(evaluate_range(s, 2 * third..s.size, 12, false));
        assert_eq!(whole.counts, merged.counts);
        assert_eq!(whole.top.into_sorted(), merged.top.into_sorted());
    }
}
