//! Reading Hugging Face weight files into name → tensor maps, whatever their format.
//!
//! Formats, in the order they are looked for in a model directory (as transformers does):
//!
//! | file | notes |
//! |---|---|
//! | `model.safetensors` | one file |
//! | `model.safetensors.index.json` | sharded: `weight_map` names the shard of every tensor |
//! | `model.fp16.safetensors` | the `fp16` variant file name (weights in f16) |
//! | `pytorch_model.bin` | PyTorch pickle (zip) format, read with burn-store's reader |
//!
//! Float tensors of any stored dtype (f16, bf16, f32, f64) are converted to f32 when taken.
//! The checkpoint remembers which tensors were taken, so a loader can report the unexpected ones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use burn::tensor::TensorData;
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// Weight file names, in the order they are preferred.
pub const WEIGHT_FILES: [&str; 4] =
    ["model.safetensors", "model.safetensors.index.json", "model.fp16.safetensors", "pytorch_model.bin"];

/// How a checkpoint's weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightsFormat {
    /// `model.safetensors`.
    Safetensors,
    /// `model.safetensors.index.json` + shards.
    ShardedSafetensors,
    /// `model.fp16.safetensors`.
    Fp16Safetensors,
    /// `pytorch_model.bin`.
    PytorchBin,
}

impl std::fmt::Display for WeightsFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Safetensors => "safetensors",
            Self::ShardedSafetensors => "sharded safetensors",
            Self::Fp16Safetensors => "fp16 safetensors",
            Self::PytorchBin => "PyTorch pickle",
        })
    }
}

impl WeightsFormat {
    /// The format of a weight file, by its name.
    pub fn of_file(name: &str) -> Option<Self> {
        match name {
            "model.safetensors" => Some(Self::Safetensors),
            "model.safetensors.index.json" => Some(Self::ShardedSafetensors),
            "model.fp16.safetensors" => Some(Self::Fp16Safetensors),
            "pytorch_model.bin" => Some(Self::PytorchBin),
            _ => None,
        }
    }
}

/// Where one tensor's values are.
enum Values {
    /// Little-endian bytes inside `buffers[buffer]`.
    Bytes { buffer: usize, dtype: Dtype, range: (usize, usize) },
    /// Already decoded (PyTorch pickles).
    Data(TensorData),
}

struct Entry {
    shape: Vec<usize>,
    dtype: String,
    values: Values,
}

/// All tensors of a checkpoint, by their name in the file.
pub struct Checkpoint {
    entries: BTreeMap<String, Entry>,
    buffers: Vec<(PathBuf, Vec<u8>)>,
    taken: BTreeSet<String>,
    /// The files read, with their sizes in bytes.
    pub files: Vec<(PathBuf, u64)>,
    /// The format.
    pub format: WeightsFormat,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint").field("format", &self.format).field("tensors", &self.entries.len()).finish()
    }
}

impl Checkpoint {
    /// Find and read the weights of the model directory `dir`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let Some(file) = WEIGHT_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file()) else {
            return Err(Error::NoWeights {
                dir: dir.into(),
                expected: WEIGHT_FILES.iter().map(|s| s.to_string()).collect(),
            });
        };
        Self::open(&file)
    }

    /// Read one weight file (for an index, every shard it names, from the index's directory).
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let format = WeightsFormat::of_file(name)
            .or_else(|| name.ends_with(".safetensors").then_some(WeightsFormat::Safetensors))
            .or_else(|| name.ends_with(".bin").then_some(WeightsFormat::PytorchBin))
            .ok_or_else(|| Error::UnknownWeightsFile { path: path.into() })?;
        let mut ckpt =
            Self { entries: BTreeMap::new(), buffers: Vec::new(), taken: BTreeSet::new(), files: Vec::new(), format };
        match format {
            WeightsFormat::Safetensors | WeightsFormat::Fp16Safetensors => ckpt.add_safetensors(path, None)?,
            WeightsFormat::ShardedSafetensors => ckpt.add_shards(path)?,
            WeightsFormat::PytorchBin => ckpt.add_pytorch(path)?,
        }
        tracing::debug!(path = %path.display(), tensors = ckpt.entries.len(), "read checkpoint");
        Ok(ckpt)
    }

    fn add_safetensors(&mut self, path: &Path, only: Option<&BTreeSet<&str>>) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
        let (header_len, metadata) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::Safetensors { path: path.into(), message: describe(&e, bytes.len()) })?;
        // `read_metadata` validates offsets against the header; check the buffer really holds them.
        let data_start = 8 + header_len;
        let buffer = self.buffers.len();
        for (name, info) in metadata.tensors() {
            if only.is_some_and(|keep| !keep.contains(name.as_str())) {
                continue;
            }
            let (begin, end) = info.data_offsets;
            if data_start + end > bytes.len() {
                return Err(Error::Safetensors {
                    path: path.into(),
                    message: format!(
                        "tensor {name} ends at byte {} but the file has {} (truncated file?)",
                        data_start + end,
                        bytes.len()
                    ),
                });
            }
            let entry = Entry {
                shape: info.shape.clone(),
                dtype: format!("{:?}", info.dtype).to_lowercase(),
                values: Values::Bytes { buffer, dtype: info.dtype, range: (data_start + begin, data_start + end) },
            };
            if self.entries.insert(name.clone(), entry).is_some() {
                return Err(Error::Safetensors { path: path.into(), message: format!("tensor {name} appears twice") });
            }
        }
        self.files.push((path.into(), bytes.len() as u64));
        self.buffers.push((path.into(), bytes));
        Ok(())
    }

    fn add_shards(&mut self, index: &Path) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: BTreeMap<String, String>,
        }
        let text = std::fs::read_to_string(index).map_err(|source| Error::Io { path: index.into(), source })?;
        let parsed: Index = serde_json::from_str(&text).map_err(|source| Error::Json { path: index.into(), source })?;
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut by_shard: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (tensor, shard) in &parsed.weight_map {
            // A shard is a file of the model directory (or below it): never `..`, `/...` or empty.
            let inside = Path::new(shard).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
                && Path::new(shard).components().any(|c| matches!(c, Component::Normal(_)));
            if !inside {
                return Err(Error::ShardPath { index: index.into(), tensor: tensor.clone(), shard: shard.clone() });
            }
            by_shard.entry(shard.as_str()).or_default().insert(tensor.as_str());
        }
        for (shard, tensors) in &by_shard {
            let path = dir.join(shard);
            if !path.is_file() {
                return Err(Error::MissingShard { index: index.into(), shard: path, tensors: tensors.len() });
            }
            self.add_safetensors(&path, Some(tensors))?;
            if let Some(missing) = tensors.iter().find(|t| !self.entries.contains_key(**t)) {
                return Err(Error::Safetensors {
                    path: path.clone(),
                    message: format!("the index places {missing} in this shard, but it is not there"),
                });
            }
        }
        let size = std::fs::metadata(index).map(|m| m.len()).unwrap_or(0);
        self.files.insert(0, (index.into(), size));
        Ok(())
    }

    fn add_pytorch(&mut self, path: &Path) -> Result<()> {
        let reader = burn_store::pytorch::PytorchReader::new(path)
            .map_err(|e| Error::Pytorch { path: path.into(), message: e.to_string() })?;
        for (name, snapshot) in reader.into_tensors() {
            let data = snapshot
                .to_data()
                .map_err(|e| Error::Pytorch { path: path.into(), message: format!("{name}: {e}") })?;
            let entry = Entry {
                shape: snapshot.shape.to_vec(),
                dtype: format!("{:?}", snapshot.dtype).to_lowercase(),
                values: Values::Data(data),
            };
            self.entries.insert(name, entry);
        }
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.files.push((path.into(), size));
        Ok(())
    }

    /// Every tensor name in the file.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether the file has a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// The most common dtype of the floating-point tensors (`f32`, `f16`, ...).
    pub fn float_dtype(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in self.entries.values().filter(|e| e.dtype.starts_with('f') || e.dtype.starts_with("bf")) {
            *counts.entry(e.dtype.as_str()).or_default() += 1;
        }
        counts.into_iter().max_by_key(|(_, n)| *n).map(|(d, _)| d.to_string()).unwrap_or_else(|| "none".into())
    }

    /// Take a tensor as f32 values with its shape, marking it used; `None` if absent.
    pub fn take(&mut self, name: &str) -> Result<Option<TensorData>> {
        let Some(entry) = self.entries.get(name) else { return Ok(None) };
        let data = match &entry.values {
            Values::Data(data) => data.clone().convert::<f32>(),
            Values::Bytes { buffer, dtype, range } => {
                let (path, bytes) = &self.buffers[*buffer];
                TensorData::new(decode_floats(&bytes[range.0..range.1], *dtype, name, path)?, entry.shape.clone())
            }
        };
        self.taken.insert(name.to_owned());
        Ok(Some(data))
    }

    /// Mark a tensor as dealt with without reading it (e.g. reported as mismatched).
    pub fn mark_seen(&mut self, name: &str) {
        self.taken.insert(name.to_owned());
    }

    /// Names present in the file but never taken.
    pub fn untaken(&self) -> Vec<String> {
        self.entries.keys().filter(|k| !self.taken.contains(*k)).cloned().collect()
    }
}

/// A safetensors error, with a hint where it usually means a file cut short (an interrupted
/// download or copy).
fn describe(err: &safetensors::SafeTensorError, file_len: usize) -> String {
    use safetensors::SafeTensorError as E;
    match err {
        E::HeaderTooSmall | E::InvalidHeaderLength | E::MetadataIncompleteBuffer => {
            format!("{err} (the file has {file_len} bytes; truncated?)")
        }
        _ => err.to_string(),
    }
}

fn decode_floats(bytes: &[u8], dtype: Dtype, name: &str, path: &Path) -> Result<Vec<f32>> {
    let values = match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => return Err(Error::Dtype { path: path.into(), tensor: name.into(), dtype: format!("{other:?}") }),
    };
    Ok(values)
}
