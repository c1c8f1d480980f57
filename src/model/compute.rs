//! The roofline: seconds that one op takes on one accelerator. Twin: `shaders/compute.wgsl`.
//!
//! An op takes `max(flops / (peak * efficiency), bytes / (hbm_bandwidth * memory_efficiency))`.
//! GEMM efficiency is a smooth function of the per-accelerator GEMM shape: each of `m`, `n`, `k`
//! contributes a saturation factor `x / (x + half_dim)`, so that the small shards of a large
//! tensor-parallel degree, short sequences or small heads run slower, as tiling and wave
//! quantisation make them do on real hardware, without the cliffs of an exact tile model.

use super::{AttentionKernel, Dtype, Hardware};

/// `x / (x + half)`: 1/2 at `x = half`, approaching 1 for large `x`.
pub fn saturation(x: f64, half: f64) -> f64 {
    x / (x + half)
}

/// Fraction of peak that a GEMM of this shape reaches on this hardware, in this format.
pub fn gemm_efficiency(m: f64, n: f64, k: f64, hw: &Hardware, dtype: Dtype) -> f64 {
    let eff = &hw.efficiency;
    let half = eff.gemm_half_dim;
    let shape = saturation(m, half) * saturation(n, half) * saturation(k, half);
    let format = if dtype.is_low_precision() {
        eff.low_precision_gemm
    } else {
        1.0
    };
    eff.gemm * format * shape
}

/// Seconds to stream `bytes` through HBM.
pub fn memory_time_s(bytes: f64, hw: &Hardware) -> f64 {
    bytes / (hw.hbm_bytes_per_s * hw.efficiency.memory)
}

/// Seconds of one GEMM `m x k` by `k x n` in `dtype` on the roofline: compute at the
/// shape-dependent efficiency, or streaming its operands and result through HBM, whichever is
/// longer.
pub fn gemm_time_s(m: f64, n: f64, k: f64, hw: &Hardware, dtype: Dtype) -> f64 {
    let flops = 2.0 * m * n * k;
    let compute_s = flops / (hw.peak(dtype) * gemm_efficiency(m, n, k, hw, dtype));
    let bytes = (m * k + k * n) * dtype.gemm_input_bytes() + m * n * 2.0;
    compute_s.max(memory_time_s(bytes, hw))
}

/// Head dimension at which fused attention would run at half its large-head efficiency.
/// From the FlashAttention papers' forward+backward throughput at head dim 64 against 128:
/// FA2 on A100, 176 vs 203 TFLOP/s (ratio 0.87, Dao 2023, Fig. 4) and FA3 on H100, ~480 vs ~583
/// (ratio 0.83, Shah et al. 2024, Figs. 5-6); `x / (x + c)` gives that ratio at c = 22 and 28.
pub const ATTENTION_HEAD_DIM_HALF: f64 = 25.0;

/// Seconds of fused attention (`kernel`, FlashAttention-2 or -3 class) doing `flops` with heads
/// of `head_dim` over `q_tokens` queries per sequence, in the run's 16-bit format. Narrow heads
/// run the kernel's inner GEMMs less efficiently; short sequences give it fewer query blocks to
/// spread.
pub fn attention_time_s(
    flops: f64,
    head_dim: f64,
    q_tokens: f64,
    hw: &Hardware,
    dtype: Dtype,
    kernel: AttentionKernel,
) -> f64 {
    let eff = &hw.efficiency;
    let shape = saturation(head_dim, ATTENTION_HEAD_DIM_HALF) * saturation(q_tokens, eff.gemm_half_dim);
    flops / (hw.peak(dtype.activation_dtype()) * eff.fused_attention(kernel) * shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::h100;

    #[test]
    fn saturation_is_half_at_half_dim() {
        assert_eq!(saturation(128.0, 128.0), 0.5);
        assert!(saturation(1e9, 128.0) > 0.999);
    }

    #[test]
    fn large_gemm_is_compute_bound_at_gemm_efficiency() {
        let hw = h100();
        let n = 16384.0;
        let t = gemm_time_s(n, n, n, &hw, Dtype::Bf16);
        let s = saturation(n, hw.efficiency.gemm_half_dim).powi(3);
        let expected = 2.0 * n * n * n / (989.4e12 * hw.efficiency.gemm * s);
        assert!((t / expected - 1.0).abs() < 1e-12);
    }

    #[test]
    fn skinny_gemm_is_memory_bound() {
        // m = 1: a matrix-vector product streams the weight matrix.
        let hw = h100();
        let t = gemm_time_s(1.0, 8192.0, 8192.0, &hw, Dtype::Bf16);
        let bytes = (8192.0 + 8192.0 * 8192.0) * 2.0 + 8192.0 * 2.0;
        assert!((t / memory_time_s(bytes, &hw) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn smaller_shards_run_at_lower_efficiency() {
        let hw = h100();
        let big = gemm_efficiency(8192.0, 12288.0, 12288.0, &hw, Dtype::Bf16);
        let tp8 = gemm_efficiency(8192.0, 1536.0, 12288.0, &hw, Dtype::Bf16);
        assert!(tp8 < big);
    }

    #[test]
    fn fp8_gemm_is_faster_than_bf16_but_not_twice() {
        let hw = h100();
        let (m, n, k) = (8192.0, 8192.0, 8192.0);
        let ratio = gemm_time_s(m, n, k, &hw, Dtype::Bf16) / gemm_time_s(m, n, k, &hw, Dtype::Fp8);
        assert!(ratio > 1.0 && ratio <= 2.0, "{ratio}");
    }

    #[test]
    fn fp8_attention_runs_at_the_16_bit_rate() {
        let hw = h100();
        let a = attention_time_s(1e12, 128.0, 4096.0, &hw, Dtype::Fp8, AttentionKernel::Flash3);
        let b = attention_time_s(1e12, 128.0, 4096.0, &hw, Dtype::Bf16, AttentionKernel::Flash3);
        assert_eq!(a, b);
    }

    #[test]
    fn flash2_runs_at_its_own_efficiency() {
        let hw = h100();
        let e = &hw.efficiency;
        let f2 = attention_time_s(1e12, 128.0, 4096.0, &hw, Dtype::Bf16, AttentionKernel::Flash2);
        let f3 = attention_time_s(1e12, 128.0, 4096.0, &hw, Dtype::Bf16, AttentionKernel::Flash3);
        assert!((f2 / f3 - e.attention / e.attention_flash2).abs() < 1e-12);
    }
}
