//! The training recipe ([`TrainConfig`], named as transformers' `TrainingArguments`), what
//! happens to masks during training ([`MaskMode`]) and what each epoch measured ([`EpochRecord`]).

use crate::scores::Scores;

/// Hyper-parameters, named as transformers' `TrainingArguments` names them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Decoupled weight decay (not applied to biases and LayerNorm weights).
    pub weight_decay: f64,
    /// Adam β1.
    pub adam_beta1: f32,
    /// Adam β2.
    pub adam_beta2: f32,
    /// Adam ε.
    pub adam_epsilon: f32,
    /// Fraction of the optimizer steps spent warming up linearly from 0.
    pub warmup_ratio: f64,
    /// Epochs.
    pub num_train_epochs: usize,
    /// Examples per forward pass.
    pub per_device_train_batch_size: usize,
    /// Examples per evaluation batch.
    pub per_device_eval_batch_size: usize,
    /// Forward passes per optimizer step.
    pub gradient_accumulation_steps: usize,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Seed of data order, dropout and new heads.
    pub seed: u64,
    /// Batch examples of similar length together (less padding).
    pub group_by_length: bool,
    /// Read the loss back from the device every this many optimizer steps (and at the end of
    /// each epoch): progress display and the NaN/inf check happen then. Reading it every step
    /// would stall GPU backends on a host round trip per step.
    pub logging_steps: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2e-5,
            weight_decay: 0.01,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            warmup_ratio: 0.0,
            num_train_epochs: 3,
            per_device_train_batch_size: 32,
            per_device_eval_batch_size: 64,
            gradient_accumulation_steps: 1,
            max_grad_norm: 1.0,
            seed: 42,
            group_by_length: false,
            logging_steps: 50,
        }
    }
}

/// A setting of [`TrainConfig`] outside its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid training setting {key}: {message}")]
pub struct ConfigError {
    /// The setting.
    pub key: &'static str,
    /// What is wrong.
    pub message: &'static str,
}

impl TrainConfig {
    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message| Err(ConfigError { key, message });
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be a positive number");
        }
        if self.per_device_train_batch_size == 0 || self.per_device_eval_batch_size == 0 {
            return bad("batch size", "must be at least 1");
        }
        if self.gradient_accumulation_steps == 0 {
            return bad("gradient_accumulation_steps", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad("warmup_ratio", "must be in [0, 1)");
        }
        if self.num_train_epochs == 0 {
            return bad("num_train_epochs", "must be at least 1");
        }
        if self.logging_steps == 0 {
            return bad("logging_steps", "must be at least 1");
        }
        Ok(())
    }
}

/// What happens to pruning masks during fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskMode {
    /// Zero the gradients of pruned weights and re-apply the masks after every step.
    Hold,
    /// Apply the masks once and train freely (the study's `prune.remove`): pruned weights may
    /// grow back.
    Release,
}

impl MaskMode {
    /// As written in result files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            MaskMode::Hold => "hold",
            MaskMode::Release => "release",
        }
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Optimizer steps.
    pub steps: usize,
    /// Training wall time, excluding the first optimizer step of the run (reported separately).
    pub train_seconds: f64,
    /// Training examples per second (excluding the first step).
    pub samples_per_second: f64,
    /// Real (non-padding) training tokens per second (excluding the first step).
    pub tokens_per_second: f64,
    /// Dev-set metrics after the epoch.
    pub eval: Scores,
    /// Evaluation wall time.
    pub eval_seconds: f64,
}
