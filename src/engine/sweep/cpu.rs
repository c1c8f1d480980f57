//! The CPU engine: the f64 model over all cores (rayon). Twin of `shaders/sweep.wgsl`.
//!
//! The index range is cut into chunks; each chunk walks its indices in order with an odometer
//! over the digits and keeps one [`Profile`] per set of per-layer knobs (the outer seven axes),
//! so the per-layer model runs once per few hundred layouts and each layout pays only for the
//! stage-level functions. Chunks merge their counts and top-k.

use super::{objective_value, Partial, Ranked};
use crate::engine::search::{SearchSpace, N_AXES, PROFILE_AXES};
use crate::model::profile::{profile, Profile};
use crate::model::run::estimate_with;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Indices per chunk: large enough to amortise a chunk's start, small enough to balance cores
/// and report progress often.
pub const CHUNK: u64 = 1 << 18;

/// Evaluate `range` of the space sequentially.
pub fn evaluate_range(space: &SearchSpace, range: Range<u64>, k: usize) -> Partial {
    let mut out = Partial::new(k);
    if range.is_empty() {
        return out;
    }
    let radices = space.radices();
    let mut digits = space.digits(range.start);
    let mut cached: Option<([u32; PROFILE_AXES], Profile)> = None;
    for index in range {
        out.counts.evaluated += 1;
        match space.candidate_at(&digits) {
            Err(why) => out.counts.count_invalid(why),
            Ok(c) => {
                let key: [u32; PROFILE_AXES] = digits[..PROFILE_AXES].try_into().expect("profile axes");
                let acc = &space.accelerators[c.accelerator];
                let training = space.training_for(&c);
                let p = match &cached {
                    Some((k, p)) if *k == key => *p,
                    _ => {
                        let p = profile(&space.model, &training, &acc.hardware, &c.layout);
                        cached = Some((key, p));
                        p
                    }
                };
                let e = estimate_with(
                    &p,
                    &space.model,
                    &training,
                    &acc.hardware,
                    &acc.economics,
                    &c.layout,
                );
                if e.fits {
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
        // Odometer: next digits, innermost first.
        for axis in (0..N_AXES).rev() {
            digits[axis] += 1;
            if (digits[axis] as u64) < radices[axis] {
                break;
            }
            digits[axis] = 0;
        }
    }
    out
}

/// Evaluate `range` on all cores; `progress` is called with the number of layouts finished
/// since its last call and the best objective among them (infinity if none ranked).
pub fn sweep_cpu(
    space: &SearchSpace,
    range: Range<u64>,
    k: usize,
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
            let part = evaluate_range(space, chunk, k);
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

    #[test]
    fn counts_add_up_and_every_outcome_occurs() {
        let s = space();
        let p = sweep_cpu(&s, 0..s.size, 10, &|_, _| {});
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
        let top = evaluate_range(&s, 0..s.size, k).top.into_sorted();
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
        let p = evaluate_range(s, 0..s.size, k);
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
        let a = evaluate_range(&s, 0..s.size, 15);
        let b = sweep_cpu(&s, 0..s.size, 15, &|_, _| {});
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
        let whole = evaluate_range(s, 0..s.size, 12);
        let third = s.size / 3;
        let merged = evaluate_range(s, 0..third, 12)
            .merge(evaluate_range(s, third..2 * third, 12))
            .merge(evaluate_range(s, 2 * third..s.size, 12));
        assert_eq!(whole.counts, merged.counts);
        assert_eq!(whole.top.into_sorted(), merged.top.into_sorted());
    }
}
