//! Properties of the model over random valid scenarios (proptest): it never panics and never
//! produces NaN, infinity, or a negative time, memory or cost.

use clustersweep::input::catalog::Catalog;
use clustersweep::input::scenario::{
    ClusterSection, LayoutSection, ModelSection, ScenarioFile, TrainingSection,
};
use clustersweep::model::run::estimate;
use clustersweep::model::{Dtype, FfnKind, Recompute};
use proptest::prelude::*;

fn pow2(max_log: u32) -> impl Strategy<Value = u32> {
    (0..=max_log).prop_map(|k| 1u32 << k)
}

fn scenario_file() -> impl Strategy<Value = ScenarioFile> {
    let accelerators = Catalog::builtin()
        .accelerators
        .iter()
        .map(|a| a.id.clone())
        .collect::<Vec<_>>();
    (
        (1u32..=8, 1u32..=16, pow2(3), prop::bool::ANY, 9u32..=15, 1u32..=4),
        (
            prop::sample::select(accelerators),
            pow2(3),
            pow2(3),
            pow2(2),
            pow2(6),
            pow2(2),
        ),
        (
            pow2(3),
            1u32..=3,
            prop::sample::select(Recompute::ALL.to_vec()),
            prop::bool::ANY,
            0u32..=3,
            prop::bool::ANY,
        ),
        (0u32..=2, pow2(3)),
    )
        .prop_map(
            |(
                (heads_mult, layers_mult, kv_div, swiglu, seq_log, ffn_mult),
                (acc, tp, pp, cp, dp, mb),
                (gb_mult, interleave, recompute, sp, zero, fp8),
                (moe, ep),
            )| {
                let heads = 8 * heads_mult;
                let layers = 4 * layers_mult;
                let experts = if moe == 2 { 8 } else { 0 };
                ScenarioFile {
                    model: ModelSection {
                        layers: Some(layers),
                        hidden: Some(heads * 128),
                        heads: Some(heads),
                        kv_heads: Some((heads / kv_div).max(1)),
                        ffn: Some(heads * 128 * ffn_mult),
                        ffn_kind: Some(if swiglu { FfnKind::Swiglu } else { FfnKind::Mlp }),
                        vocab: Some(32000),
                        seq_len: Some(1 << seq_log),
                        experts: (experts > 0).then_some(experts),
                        experts_per_token: (experts > 0).then_some(2),
                        ..Default::default()
                    },
                    training: TrainingSection {
                        global_batch: Some(dp * mb * gb_mult * pp),
                        dtype: Some(if fp8 { Dtype::Fp8 } else { Dtype::Bf16 }),
                        tokens: Some(1e11),
                        ..Default::default()
                    },
                    cluster: ClusterSection {
                        accelerator: Some(acc),
                        count: Some((tp * pp * cp * dp) as u64),
                        price_per_hour_usd: Some(2.0),
                        ..Default::default()
                    },
                    layout: LayoutSection {
                        tp: Some(tp),
                        pp: Some(pp),
                        dp: Some(dp),
                        cp: Some(cp),
                        ep: Some(if experts > 0 { ep.min(dp * cp).min(8) } else { 1 }),
                        microbatch: Some(mb),
                        interleave: Some(interleave),
                        recompute: Some(recompute),
                        sequence_parallel: Some(sp),
                        tp_overlap: Some(sp),
                        zero: Some(zero),
                        ..Default::default()
                    },
                    search: None,
                    constraints: None,
                }
            },
        )
}

/// Share of the generator's scenarios that resolve, over 1,000 draws of a fixed seed.
fn resolved_share() -> f64 {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let catalog = Catalog::builtin();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = scenario_file();
    let draws = 1000;
    let resolved = (0..draws)
        .filter(|_| {
            let file = strategy.new_tree(&mut runner).unwrap().current();
            file.resolve(&catalog, "proptest").is_ok()
        })
        .count();
    resolved as f64 / draws as f64
}

/// The property below passes every scenario that does not resolve, so it tests something only
/// while the generator makes enough scenarios that do.
#[test]
fn most_random_scenarios_resolve_so_the_property_tests_the_model() {
    let share = resolved_share();
    assert!(
        share >= MIN_RESOLVED_SHARE,
        "only {:.1} % of the generated scenarios resolve",
        share * 100.0
    );
}

/// The least share of generated scenarios that must resolve: 52.9 % did when this was written
/// (the rest are refused for a degree that does not divide or a format the accelerator lacks).
const MIN_RESOLVED_SHARE: f64 = 0.4;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_valid_scenarios_give_finite_non_negative_results(file in scenario_file()) {
        let catalog = Catalog::builtin();
        // Scenarios the checks refuse (a degree that does not divide, a dtype the accelerator
        // lacks) are fine: they must be refused with a message, not a panic.
        let Ok(s) = file.resolve(&catalog, "proptest") else { return Ok(()) };
        let e = estimate(&s.model, &s.training, &s.hardware, &s.economics, &s.layout);
        let numbers = [
            e.step_time_s, e.tokens_per_s, e.mfu, e.hfu, e.memory_per_accelerator_bytes, e.time_to_train_s,
            e.power_mw, e.energy_mwh, e.cost_usd, e.model_flops_per_step, e.memory_excess_bytes,
        ];
        for v in numbers {
            prop_assert!(v.is_finite() && v >= 0.0, "{v} in {e:?}");
        }
        prop_assert!(e.step_time_s > 0.0);
        for (k, v) in e.breakdown.terms() {
            prop_assert!(v.is_finite() && v >= 0.0, "{k} = {v}");
        }
        for (k, v) in e.memory.kinds() {
            prop_assert!(v.is_finite() && v >= 0.0, "{k} = {v}");
        }
        prop_assert!(e.mfu <= 1.0, "mfu {}", e.mfu);
    }

    #[test]
    fn arbitrary_toml_never_panics(text in "\\PC{0,200}") {
        let _ = ScenarioFile::parse(&text, "fuzz").and_then(|f| f.resolve(&Catalog::builtin(), "fuzz"));
    }
}
