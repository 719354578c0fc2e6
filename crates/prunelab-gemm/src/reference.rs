//! f64 references the kernels are checked against: the CPU kernels' tests and `prunelab-cublas`'s
//! install checks on the device.

/// erf in f64, to about 1e-15: the Maclaurin series for |x| ≤ 3, the continued fraction of erfc
/// beyond.
pub fn erf64(x: f64) -> f64 {
    if x.abs() > 3.0 {
        let t = x.abs();
        let mut cf = 0.0;
        for k in (1..60).rev() {
            cf = (k as f64 / 2.0) / (t + cf);
        }
        return (1.0 - (-t * t).exp() / std::f64::consts::PI.sqrt() / (t + cf)).copysign(x);
    }
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}
