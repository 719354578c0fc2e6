//! Mask files: safetensors of 0/1 `u8` tensors keyed by Hugging Face parameter key, in the
//! Hugging Face layout (what torch's `module.weight_mask` holds), with the spec and scope in the
//! metadata. Loading checks every key and shape against the model.

use std::collections::HashMap;
use std::path::Path;

use prunelab_stats::NamedTensor;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::masks::{Mask, MaskSet};

/// The metadata value that marks a prunelab mask file.
pub const FORMAT: &str = "prunelab-masks-v1";

/// Write `masks` to `path` atomically (temp file, then rename), with `metadata` (e.g. the spec).
pub fn save_masks(masks: &MaskSet, path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        masks.masks.iter().map(|m| (m.key.clone(), m.hf_shape(), m.to_hf_bytes())).collect();
    let views = bytes
        .iter()
        .map(|(k, s, b)| TensorView::new(Dtype::U8, s.clone(), b).map(|v| (k.clone(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Format { path: path.into(), message: e.to_string() })?;
    let mut meta = metadata.clone();
    meta.insert("format".into(), FORMAT.into());
    let data = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Format { path: path.into(), message: e.to_string() })?;
    write_atomic(path, &data)
}

/// Read masks from `path` for the model whose parameters are `tensors`.
pub fn load_masks(path: &Path, tensors: &[NamedTensor]) -> Result<MaskSet> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let format_err = |message: String| Error::Format { path: path.into(), message };
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| format_err(e.to_string()))?;
    if metadata.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str) != Some(FORMAT) {
        return Err(format_err(format!("not a prunelab mask file (no metadata format = {FORMAT})")));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format_err(e.to_string()))?;
    let by_key: HashMap<&str, &NamedTensor> = tensors.iter().map(|t| (t.key.as_str(), t)).collect();
    let mismatch = |message: String| Error::MaskMismatch { path: path.into(), message };
    let mut masks = Vec::new();
    let mut stored = st.tensors();
    stored.sort_by(|a, b| a.0.cmp(&b.0)); // deterministic error messages
    for (key, view) in stored {
        let Some(t) = by_key.get(key.as_str()) else {
            return Err(mismatch(format!("it has a mask for {key}, which this model does not have")));
        };
        if view.dtype() != Dtype::U8 {
            return Err(mismatch(format!("mask {key} has dtype {:?}, expected U8", view.dtype())));
        }
        let mut mask = Mask {
            key: key.clone(),
            path: t.path.clone(),
            module: t.module,
            layer: t.layer,
            role: t.role,
            shape: t.shape.clone(),
            keep: Vec::new(),
        };
        if view.shape() != mask.hf_shape().as_slice() {
            return Err(mismatch(format!(
                "mask {key} has shape {:?}, the model's tensor is {:?}",
                view.shape(),
                mask.hf_shape()
            )));
        }
        if let Some(v) = view.data().iter().find(|v| **v > 1) {
            return Err(mismatch(format!("mask {key} holds {v}; masks hold 0 and 1 only")));
        }
        mask.keep = Mask::keep_from_hf(view.data(), &mask.shape, mask.module);
        masks.push(mask);
    }
    // Module order, as computed masks are.
    let order: HashMap<&str, usize> = tensors.iter().enumerate().map(|(i, t)| (t.key.as_str(), i)).collect();
    masks.sort_by_key(|m| order[m.key.as_str()]);
    Ok(MaskSet { masks })
}

/// Write `data` to `path` through a temporary file in the same directory, flushed to disk, and a
/// rename, so a reader never sees a partial file. When writing fails (a full disk, say), the
/// temporary file is removed and `path` keeps what it had.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let tmp =
        dir.join(format!(".{}.tmp-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("out"), std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, data)?;
        // A full disk or quota may only show when the data reaches the disk.
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write { path: path.into(), source }
    })
}
