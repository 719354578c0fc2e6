//! The element-wise functions of the fused CPU kernels, written so that the compiler vectorises
//! loops over them: no branches, no calls into libm (whose `expf`/`erff` stay scalar), rounding by
//! the 1.5·2²³ trick instead of `round()`.
//!
//! Accuracy (checked against f64 in the tests): `exp` within 2e-7 relative, `erf` within 6e-7
//! absolute (Abramowitz & Stegun 7.1.26's 1.5e-7, plus f32 rounding), `tanh` within 3e-7 absolute — below the 1e-4 the
//! parity tests hold the models to, and below the differences TF32 products make on the GPU.

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cephes): `n·LN2_HI` is exact for the `n` an f32 exponent can take.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5·2²³ rounds an f32 of magnitude below 2²² to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// The smallest argument whose `eˣ` is a normal f32; below it [`exp`] is 0.
const EXP_MIN: f32 = -87.336_54;

/// `eˣ`: 0 below [`EXP_MIN`] (never a subnormal: those make every later product that meets them
/// a hundred times slower on x86, and masked attention scores meet them on every padded key),
/// near f32::MAX above 88.7.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let underflow = x < EXP_MIN;
    let x = x.clamp(EXP_MIN, 88.722_83);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Cephes' expf polynomial on |r| ≤ ln 2 / 2.
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2ⁿ from the bits of n + 2²³ + 127 (its low mantissa bits hold n + 127, in 1..=255 for the
    // clamped argument): the value `((n as i32 + 127) as u32) << 23` gives, without the
    // saturating cast, which the compiler does not vectorise.
    let value = e * f32::from_bits((n + 8_388_735.0).to_bits() << 23);
    if underflow { 0.0 } else { value }
}

/// `Σ f(i)` for `i` in `0..len`, element `i` added to lane `i % 8`, then the lanes in order: a
/// fixed order, written as whole chunks of eight so that the compiler adds eight lanes at once
/// (an indexed `lanes[i % 8]` stays a scalar loop).
#[inline(always)]
pub fn lanes_sum(len: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let whole = len / 8 * 8;
    for chunk in (0..whole).step_by(8) {
        for (j, lane) in lanes.iter_mut().enumerate() {
            *lane += f(chunk + j);
        }
    }
    for (lane, i) in lanes.iter_mut().zip(whole..len) {
        *lane += f(i);
    }
    lanes.iter().sum()
}

/// The maximum of `f(i)` for `i` in `0..len` (`len` > 0), in the lanes of [`lanes_sum`].
#[inline(always)]
pub fn lanes_max(len: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let whole = len / 8 * 8;
    for chunk in (0..whole).step_by(8) {
        for (j, lane) in lanes.iter_mut().enumerate() {
            *lane = lane.max(f(chunk + j));
        }
    }
    for (lane, i) in lanes.iter_mut().zip(whole..len) {
        *lane = lane.max(f(i));
    }
    lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// `erf(x)` (Abramowitz & Stegun 7.1.26, absolute error ≤ 1.5e-7 in exact arithmetic).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// `tanh(x)`, as `1 − 2 / (e²ˣ + 1)` (exact at the saturated ends: ±1).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / √(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;
/// √(2/π) and the cubic coefficient of transformers' `gelu_new`.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044_715;

/// Exact GELU, `x·Φ(x)`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

/// d GELU / dx = Φ(x) + x·φ(x).
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * FRAC_1_SQRT_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x)
}

/// transformers' `gelu_new`: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)))
}

/// d `gelu_new` / dx.
#[inline(always)]
pub fn gelu_tanh_grad(x: f32) -> f32 {
    let t = tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::erf64;

    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    /// `exp` as it was written before its `2ⁿ` was built from bits (with a saturating cast).
    fn exp_with_cast(x: f32) -> f32 {
        let underflow = x < EXP_MIN;
        let x = x.clamp(EXP_MIN, 88.722_83);
        let n = (x * LOG2_E + ROUND) - ROUND;
        let r = x - n * LN2_HI - n * LN2_LO;
        let mut p = 1.987_569_1e-4_f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 0.166_666_65;
        p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        let value = e * f32::from_bits(((n as i32 + 127) as u32) << 23);
        if underflow { 0.0 } else { value }
    }

    #[test]
    fn exp_has_the_bits_of_the_cast_version() {
        for x in grid(-100.0, 100.0, 200_000).chain([EXP_MIN, 88.722_83, f32::MIN, f32::MAX, -0.0]) {
            assert_eq!(exp(x).to_bits(), exp_with_cast(x).to_bits(), "exp({x})");
        }
    }

    #[test]
    fn lane_sums_and_maxima_keep_each_element_in_lane_i_mod_8() {
        let values: Vec<f32> = (0..29).map(|i| ((i * 7919) % 113) as f32 * 0.37 - 20.0).collect();
        for len in [1, 7, 8, 9, 16, 29] {
            let mut lanes = [0.0f32; 8];
            let mut maxima = [f32::NEG_INFINITY; 8];
            for (i, &v) in values[..len].iter().enumerate() {
                lanes[i % 8] += v;
                maxima[i % 8] = maxima[i % 8].max(v);
            }
            let sum: f32 = lanes.iter().sum();
            assert_eq!(lanes_sum(len, |i| values[i]).to_bits(), sum.to_bits(), "sum of {len}");
            let max = maxima.into_iter().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(lanes_max(len, |i| values[i]), max, "max of {len}");
        }
    }

    #[test]
    fn exp_is_within_2e_7_relative_of_f64() {
        let worst = grid(-87.0, 88.0, 200_000)
            .map(|x| ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 2e-7, "relative error {worst}");
        assert_eq!(exp(-1e4), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_and_tanh_are_within_6e_7_and_3e_7_absolute_of_f64() {
        let erf_worst = grid(-6.0, 6.0, 100_000).map(|x| (erf(x) as f64 - erf64(x as f64)).abs()).fold(0.0, f64::max);
        assert!(erf_worst < 6e-7, "erf error {erf_worst}");
        let tanh_worst =
            grid(-20.0, 20.0, 100_000).map(|x| (tanh(x) as f64 - (x as f64).tanh()).abs()).fold(0.0, f64::max);
        assert!(tanh_worst < 3e-7, "tanh error {tanh_worst}");
    }

    #[test]
    fn gelu_gradients_match_finite_differences() {
        for x in grid(-6.0, 6.0, 600) {
            let h = 1e-3_f64;
            let exact = |x: f64| 0.5 * x * (1.0 + erf64(x / 2f64.sqrt()));
            let approx = |x: f64| 0.5 * x * (1.0 + (0.797_884_560_8 * (x + 0.044715 * x * x * x)).tanh());
            let xd = x as f64;
            let fd_exact = (exact(xd + h) - exact(xd - h)) / (2.0 * h);
            let fd_approx = (approx(xd + h) - approx(xd - h)) / (2.0 * h);
            assert!((gelu(x) as f64 - exact(xd)).abs() < 1e-6, "gelu({x})");
            assert!((gelu_tanh(x) as f64 - approx(xd)).abs() < 1e-6, "gelu_tanh({x})");
            assert!((gelu_grad(x) as f64 - fd_exact).abs() < 2e-6, "gelu'({x})");
            assert!((gelu_tanh_grad(x) as f64 - fd_approx).abs() < 2e-6, "gelu_tanh'({x})");
        }
    }
}
