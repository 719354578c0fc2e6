//! The one error type of `prunelab-train`.

/// Errors from training and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The loss became NaN or infinite.
    #[error(
        "the loss is {value} at epoch {epoch}, step {step} (found when read back; it may have diverged up to \
         `logging_steps` steps earlier: lower the learning rate)"
    )]
    NonFinite {
        /// Epoch (1-based).
        epoch: usize,
        /// Optimizer step (1-based) at which the loss was read back.
        step: usize,
        /// The loss value.
        value: f32,
    },
    /// A configuration value outside its range.
    #[error("invalid training setting {key}: {message}")]
    Config {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An epoch checkpoint that cannot be written, read or used.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Masks that cannot be computed (a gradual schedule's update) or read (a checkpoint's).
    #[error(transparent)]
    Prune(#[from] prunelab_prune::Error),
    /// A split without labels where labels are needed.
    #[error("the {0} data has unlabelled examples; training and evaluation need labels")]
    Unlabelled(&'static str),
}

impl From<prunelab_record::ConfigError> for Error {
    fn from(err: prunelab_record::ConfigError) -> Self {
        Error::Config { key: err.key, message: err.message.into() }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
