//! Epoch checkpoints: after every epoch, [`crate::fine_tune`] saves what it needs to go
//! on (the model, both AdamW states with their moments and step counts, the best model so far,
//! the step counter and the epoch records) under `<dir>/epoch-<N>/`, and a later run with the
//! same settings starts after the last saved epoch instead of from scratch.
//!
//! Invariants: a checkpoint directory is complete or absent (written as `epoch-<N>.tmp/`, then
//! renamed; older ones removed after); a checkpoint is used only by a run whose fingerprint (the
//! caller's description of its settings) is the one it was written with; the data order of an
//! epoch and its dropout draws depend on the seed and the epoch number alone, so a resumed run
//! trains exactly as an uninterrupted one would (bit for bit on the CPU backend).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use prunelab_models::Classifier;
use prunelab_record::{EpochRecord, RunRecord};

use crate::error::{Error, Result};
use crate::optim::GroupRecord;

/// Where and for which run settings [`crate::fine_tune`] keeps epoch checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct Checkpointing<'a> {
    /// The checkpoint directory (created when needed).
    pub dir: &'a Path,
    /// Everything that must be equal for a checkpoint to be resumed (model, data, task,
    /// pruning, hyper-parameters, backend, precision), as a string; a checkpoint written with
    /// another fingerprint is refused with an error naming its directory.
    pub fingerprint: &'a str,
}

impl Checkpointing<'_> {
    /// The fingerprint of a run: what must be equal for its checkpoint to be resumed (model,
    /// revision, task, pruning, distillation, hyper-parameters, truncation, data sizes, backend,
    /// precision), taken from the run's record as it stands before training. A run without
    /// distillation gets the fingerprint earlier versions gave it, so their checkpoints resume.
    pub fn fingerprint(record: &RunRecord) -> String {
        let mut fingerprint = serde_json::json!({
            "model": record.model, "revision": record.revision, "task": record.task,
            "pruning": record.pruning, "hyperparameters": record.hyperparameters,
            "max_length": record.max_length,
            "train": record.data.as_ref().map(|d| d.train), "dev": record.data.as_ref().map(|d| d.dev),
            "backend": record.backend, "precision": record.precision,
        });
        if let Some(d) = &record.distillation {
            fingerprint["distillation"] =
                serde_json::json!({"teacher": d.teacher, "alpha": d.alpha, "temperature": d.temperature});
        }
        fingerprint.to_string()
    }
}

/// The loop's state after an epoch, besides the tensors.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct State {
    pub fingerprint: String,
    /// The last finished epoch (1-based).
    pub epoch: usize,
    /// Optimizer steps taken so far (the learning-rate schedule's position).
    pub step: usize,
    pub first_step_seconds: Option<f64>,
    pub epochs: Vec<EpochRecord>,
    /// The best epoch so far and its main metric (0 and `f64::MIN` while there is none).
    pub best_epoch: usize,
    pub best_value: f64,
    /// A gradual schedule's mask updates so far (its current masks are in [`MASKS`]).
    #[serde(default)]
    pub prune_events: Vec<prunelab_record::PruneEvent>,
    /// Host seconds of the teacher's forward passes so far.
    #[serde(default)]
    pub teacher_seconds: f64,
}

const STATE: &str = "state.json";
/// The model after the checkpoint's epoch, for [`load_model`].
pub(crate) const LAST_MODEL: &str = "model";
/// The best model so far, for [`load_model`].
pub(crate) const BEST_MODEL: &str = "best";
/// A gradual schedule's current masks (absent for other runs), in the mask file format.
const MASKS: &str = "masks.safetensors";
const OPTIM_DECAY: &str = "optim-decay";
const OPTIM_PLAIN: &str = "optim-plain";
/// The two optimizer states (decayed and plain parameter groups), for [`load_optimizer`].
pub(crate) const OPTIMIZERS: [&str; 2] = [OPTIM_DECAY, OPTIM_PLAIN];

type Files = BinFileRecorder<FullPrecisionSettings>;

fn epoch_dir(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch}"))
}

fn fail(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Checkpoint { path: path.to_owned(), message: message.to_string() }
}

/// The newest complete checkpoint under `dir`, checked against `fingerprint`; `None` when there is
/// none. Unfinished `epoch-<N>.tmp` directories (a save that was interrupted) are removed.
pub(crate) fn latest(dir: &Path, fingerprint: &str) -> Result<Option<(PathBuf, State)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(fail(dir, err)),
    };
    let mut newest: Option<(usize, PathBuf)> = None;
    for entry in entries {
        let path = entry.map_err(|e| fail(dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".tmp") {
            std::fs::remove_dir_all(&path).map_err(|e| fail(&path, e))?;
            continue;
        }
        let Some(n) = name.strip_prefix("epoch-").and_then(|n| n.parse::<usize>().ok()) else { continue };
        if path.join(STATE).is_file() && newest.as_ref().is_none_or(|(m, _)| n > *m) {
            newest = Some((n, path));
        }
    }
    let Some((_, path)) = newest else { return Ok(None) };
    let state_file = path.join(STATE);
    let text = std::fs::read_to_string(&state_file).map_err(|e| fail(&state_file, e))?;
    let state: State = serde_json::from_str(&text).map_err(|e| fail(&state_file, e))?;
    if state.fingerprint != fingerprint {
        return Err(fail(
            &path,
            "was written by a run with other settings (model, data, pruning or hyper-parameters); delete the \
             checkpoint directory to start over, or give this run another output directory",
        ));
    }
    Ok(Some((path, state)))
}

/// The model of a checkpoint, loaded into `model` (its structure; its values are replaced).
pub(crate) fn load_model<B: Backend>(
    dir: &Path,
    name: &str,
    model: Classifier<B>,
    device: &B::Device,
) -> Result<Classifier<B>> {
    let path = dir.join(name);
    let record = Recorder::<B>::load(&Files::new(), path.clone(), device).map_err(|e| fail(&path, e))?;
    Ok(model.load_record(record))
}

/// A gradual schedule's masks saved in a checkpoint, checked against `model`; `None` when the
/// checkpoint has none.
pub(crate) fn load_masks<B: Backend>(dir: &Path, model: &Classifier<B>) -> Result<Option<prunelab_prune::MaskSet>> {
    let path = dir.join(MASKS);
    if !path.is_file() {
        return Ok(None);
    }
    let tensors = prunelab_stats::weights(model, model.naming().as_ref());
    Ok(Some(prunelab_prune::file::load_masks(&path, &tensors)?))
}

/// One parameter group's optimizer state from a checkpoint (`name` from [`OPTIMIZERS`]).
pub(crate) fn load_optimizer<B: AutodiffBackend>(dir: &Path, name: &str, device: &B::Device) -> Result<GroupRecord<B>> {
    let path = dir.join(name);
    Recorder::<B>::load(&Files::new(), path.clone(), device).map_err(|e| fail(&path, e))
}

/// What an epoch's checkpoint holds besides [`State`].
pub(crate) struct Tensors<'a, B: AutodiffBackend> {
    pub model: &'a Classifier<B>,
    pub optim_decay: GroupRecord<B>,
    pub optim_plain: GroupRecord<B>,
    /// The best model when this epoch is the best so far; `None` keeps the previous checkpoint's.
    pub new_best: Option<&'a Classifier<B::InnerBackend>>,
    /// A gradual schedule's current masks.
    pub masks: Option<&'a prunelab_prune::MaskSet>,
    /// Whether there is a best model at all (a gradual schedule's first epochs may have none).
    pub has_best: bool,
}

/// Saves the state after `state.epoch` as `<dir>/epoch-<N>/` (complete or absent) and removes
/// older checkpoints.
pub(crate) fn save<B: AutodiffBackend>(dir: &Path, state: &State, tensors: Tensors<'_, B>) -> Result<()> {
    let done = epoch_dir(dir, state.epoch);
    let tmp = dir.join(format!("epoch-{}.tmp", state.epoch));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| fail(&tmp, e))?;
    let files = Files::new();
    let record = |path: PathBuf, result: std::result::Result<(), burn::record::RecorderError>| {
        result.map_err(|e| fail(&path, e))
    };
    record(
        tmp.join(LAST_MODEL),
        Recorder::<B>::record(&files, tensors.model.clone().into_record(), tmp.join(LAST_MODEL)),
    )?;
    record(tmp.join(OPTIM_DECAY), Recorder::<B>::record(&files, tensors.optim_decay, tmp.join(OPTIM_DECAY)))?;
    record(tmp.join(OPTIM_PLAIN), Recorder::<B>::record(&files, tensors.optim_plain, tmp.join(OPTIM_PLAIN)))?;
    let best_file = |d: &Path| d.join(format!("{BEST_MODEL}.bin"));
    match tensors.new_best {
        Some(best) => record(
            tmp.join(BEST_MODEL),
            Recorder::<B::InnerBackend>::record(&files, best.clone().into_record(), tmp.join(BEST_MODEL)),
        )?,
        None if !tensors.has_best => {}
        None => {
            // The best epoch is an earlier one: its model comes along from the previous checkpoint.
            let previous = best_file(&epoch_dir(dir, state.epoch - 1));
            let to = best_file(&tmp);
            if std::fs::hard_link(&previous, &to).is_err() {
                std::fs::copy(&previous, &to).map_err(|e| fail(&previous, e))?;
            }
        }
    }
    if let Some(masks) = tensors.masks {
        prunelab_prune::file::save_masks(masks, &tmp.join(MASKS), &Default::default())?;
    }
    let state_file = tmp.join(STATE);
    let text = serde_json::to_vec_pretty(state).map_err(|e| fail(&state_file, e))?;
    std::fs::write(&state_file, text).map_err(|e| fail(&state_file, e))?;
    let _ = std::fs::remove_dir_all(&done);
    std::fs::rename(&tmp, &done).map_err(|e| fail(&done, e))?;
    for older in 1..state.epoch {
        let _ = std::fs::remove_dir_all(epoch_dir(dir, older));
    }
    tracing::debug!(dir = %done.display(), "checkpoint saved");
    Ok(())
}

/// The dropout seed of `epoch`: the run's seed for the first epoch (as before checkpoints
/// existed), and one derived from the seed and the epoch after, so that an epoch's draws do not
/// depend on the process having run the epochs before it.
pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    if epoch <= 1 { seed } else { seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch as u64) }
}
