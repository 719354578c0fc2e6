//! The one error type of `prunelab-models`. Every variant names the file or key it is about.

use std::path::PathBuf;

/// One disagreement between a checkpoint and the model it is loaded into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// The model needs a tensor the checkpoint lacks.
    Missing {
        /// Checkpoint key looked for.
        key: String,
        /// Shape the model needs.
        shape: Vec<usize>,
    },
    /// The checkpoint's tensor has another shape than the model's.
    Shape {
        /// Checkpoint key.
        key: String,
        /// Shape in the checkpoint.
        found: Vec<usize>,
        /// Shape the model needs.
        expected: Vec<usize>,
    },
    /// The checkpoint has a tensor the model does not use (and that is not ignored by name).
    Unexpected {
        /// Checkpoint key.
        key: String,
        /// Its shape.
        shape: Vec<usize>,
    },
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyProblem::Missing { key, shape } => write!(f, "missing tensor {key} (the model needs shape {shape:?})"),
            KeyProblem::Shape { key, found, expected } => {
                write!(f, "tensor {key} has shape {found:?} in the checkpoint, the model needs {expected:?}")
            }
            KeyProblem::Unexpected { key, shape } => write!(f, "unexpected tensor {key} {shape:?}"),
        }
    }
}

/// Errors from reading configs and checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file cannot be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file that does not parse (the message has line and column).
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A config value prunelab cannot use.
    #[error("{}: key {key:?}: {message}", path.display())]
    Config {
        /// The `config.json`.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A `model_type` prunelab does not implement.
    #[error("{}: model_type {found:?} is not supported (supported: {})", path.display(), supported.join(", "))]
    UnsupportedModelType {
        /// The `config.json`.
        path: PathBuf,
        /// Its `model_type`.
        found: String,
        /// The supported ones.
        supported: Vec<&'static str>,
    },
    /// A model directory without any weight file.
    #[error("no weights in {}: expected one of {}", dir.display(), expected.join(", "))]
    NoWeights {
        /// The directory.
        dir: PathBuf,
        /// The file names looked for.
        expected: Vec<String>,
    },
    /// A weight file of a kind prunelab cannot read.
    #[error("{}: not a weight file prunelab reads (.safetensors, .safetensors.index.json or .bin)", path.display())]
    UnknownWeightsFile {
        /// The file.
        path: PathBuf,
    },
    /// A malformed or truncated safetensors file.
    #[error("{}: invalid safetensors file: {message}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A shard named by a sharded checkpoint's index is absent.
    #[error("{}: shard {} (holding {tensors} tensors) is missing", index.display(), shard.display())]
    MissingShard {
        /// The index file.
        index: PathBuf,
        /// The missing shard.
        shard: PathBuf,
        /// How many tensors the index places in it.
        tensors: usize,
    },
    /// A sharded checkpoint's index that places a tensor outside the model directory.
    #[error("{}: weight_map[{tensor:?}]: shard {shard:?} is not a file inside the model directory", index.display())]
    ShardPath {
        /// The index file.
        index: PathBuf,
        /// The tensor.
        tensor: String,
        /// The shard path as written.
        shard: String,
    },
    /// A PyTorch checkpoint that cannot be read.
    #[error("{}: cannot read PyTorch checkpoint: {message}", path.display())]
    Pytorch {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A weight stored with a non-float dtype.
    #[error("{}: tensor {tensor} has dtype {dtype}, expected a float type", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// The checkpoint does not fit the model: every problem is listed.
    #[error("{} does not fit the {model} model:\n  {}", path.display(), problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Mismatch {
        /// The weight file.
        path: PathBuf,
        /// The architecture.
        model: &'static str,
        /// Every disagreement found.
        problems: Vec<KeyProblem>,
    },
    /// A stored classification head sized for another number of labels than the task's.
    #[error(
        "{}: the model is a {declared}-label classifier (id2label/num_labels) but the task has {expected} labels; \
         start from a checkpoint without this head, or one fine-tuned on this task",
        config.display()
    )]
    LabelCount {
        /// The `config.json`.
        config: PathBuf,
        /// The number of labels it declares (the stored head's size).
        declared: usize,
        /// The task's number of labels.
        expected: usize,
        /// The shape mismatch of the head.
        #[source]
        source: Box<Error>,
    },
    /// A Hub lookup failed.
    #[error(transparent)]
    Hub(#[from] prunelab_hub::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
