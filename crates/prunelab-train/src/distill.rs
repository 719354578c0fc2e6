//! Knowledge distillation from a fine-tuned teacher (Hinton et al. 2015, as transformers'
//! distillation examples and SparseML's recipes use it): the loss is
//! (1 − α)·CE(student, labels) + α·T²·KL(softmax(z_teacher/T) ‖ softmax(z_student/T)), the KL
//! averaged over the batch. The teacher runs forward only, on the inner (non-autodiff) backend:
//! no gradients, no optimizer state, no dropout.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use prunelab_models::Classifier;

use crate::error::{Error, Result};

/// A teacher and how much of the loss it provides.
#[derive(Debug, Clone, Copy)]
pub struct Distillation<'a, B: Backend> {
    /// The teacher (typically the dense run's fine-tuned model).
    pub teacher: &'a Classifier<B>,
    /// α, the weight of the distillation term, in [0, 1].
    pub alpha: f64,
    /// T, the softmax temperature (> 0).
    pub temperature: f64,
}

impl<B: Backend> Distillation<'_, B> {
    /// Checks α and T.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::Config { key: "kd_alpha", message: "must be in [0, 1]".into() });
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::Config { key: "kd_temperature", message: "must be a positive number".into() });
        }
        Ok(())
    }
}

/// `T²·KL(softmax(teacher/T) ‖ softmax(student/T))`, summed over classes and averaged over the
/// batch (torch's `kl_div(..., reduction="batchmean") * T**2`). `[batch, classes]` logits; the
/// gradient flows into `student` only.
pub fn distillation_loss<B: Backend>(student: Tensor<B, 2>, teacher: Tensor<B, 2>, temperature: f64) -> Tensor<B, 1> {
    let log_student = log_softmax(student.div_scalar(temperature), 1);
    let log_teacher = log_softmax(teacher.div_scalar(temperature), 1);
    let kl = (log_teacher.clone().exp() * (log_teacher - log_student)).sum_dim(1);
    kl.mean() * (temperature * temperature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn the_distillation_loss_is_torchs() {
        // torch: F.kl_div(F.log_softmax(s / 2, 1), F.log_softmax(t / 2, 1), reduction="batchmean",
        // log_target=True) * 4 for s = [[1, 2], [0.5, -1]], t = [[2, 0], [0, 1]]
        let device = Default::default();
        let s = Tensor::<NdArray, 2>::from_floats([[1.0, 2.0], [0.5, -1.0]], &device);
        let t = Tensor::<NdArray, 2>::from_floats([[2.0, 0.0], [0.0, 1.0]], &device);
        let loss = distillation_loss(s.clone(), t, 2.0).into_scalar();
        // By hand: p_t/q_s per row at T = 2.
        let kl = |s: [f64; 2], t: [f64; 2]| {
            let soft = |z: [f64; 2]| {
                let e = [(z[0] / 2.0).exp(), (z[1] / 2.0).exp()];
                [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])]
            };
            let (p, q) = (soft(t), soft(s));
            p[0] * (p[0] / q[0]).ln() + p[1] * (p[1] / q[1]).ln()
        };
        let expected = 4.0 * (kl([1.0, 2.0], [2.0, 0.0]) + kl([0.5, -1.0], [0.0, 1.0])) / 2.0;
        assert!((f64::from(loss) - expected).abs() < 1e-6, "{loss} vs {expected}");
        assert!(distillation_loss(s.clone(), s, 3.0).into_scalar().abs() < 1e-7, "no loss against itself");
    }
}
