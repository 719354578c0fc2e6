//! Exporting a (pruned) model.
//!
//! - **Hugging Face checkpoint**: `config.json` + `model.safetensors` (f32, Hugging Face keys and
//!   layouts, zeros in place), which transformers' `from_pretrained` loads.
//! - **Compressed**: `model.pruned.safetensors`, where every masked tensor `K` is stored as
//!   `K.mask` (its keep-bits packed 8 per byte, little-endian bit order, Hugging Face layout) and
//!   `K.values` (the kept values in order); other tensors as they are. The Hugging Face shapes
//!   are in the metadata. [`read_compressed`] restores the dense tensors.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use prunelab_models::HfModule;
use prunelab_stats::NamedTensor;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::file::write_atomic;
use crate::masks::{MaskSet, transpose};

/// The metadata value that marks a compressed prunelab checkpoint.
pub const COMPRESSED_FORMAT: &str = "prunelab-compressed-v1";

/// A file written by an export.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A tensor's values in the Hugging Face layout, with its shape there.
fn hf_values(t: &NamedTensor) -> (Vec<usize>, Vec<f32>) {
    if t.module == HfModule::Linear && t.shape.len() == 2 {
        (vec![t.shape[1], t.shape[0]], transpose(&t.values, t.shape[0], t.shape[1]))
    } else {
        (t.shape.clone(), t.values.clone())
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn serialize(
    path: &Path,
    tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)],
    meta: HashMap<String, String>,
) -> Result<Written> {
    let views = tensors
        .iter()
        .map(|(k, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (k.clone(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Format { path: path.into(), message: e.to_string() })?;
    let data = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Format { path: path.into(), message: e.to_string() })?;
    write_atomic(path, &data)?;
    Ok(Written { path: path.into(), bytes: data.len() as u64 })
}

/// Write `dir/config.json` (the model's own, with the head size set to `num_labels` and the
/// `overrides` applied) and `dir/model.safetensors` with every tensor in `tensors`.
pub fn export_hf(
    tensors: &[NamedTensor],
    config_json: &Path,
    num_labels: usize,
    overrides: &[(&str, serde_json::Value)],
    dir: &Path,
) -> Result<Vec<Written>> {
    let text = std::fs::read_to_string(config_json).map_err(Error::io(config_json))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::Format { path: config_json.into(), message: e.to_string() })?;
    if let Some(obj) = config.as_object_mut() {
        let labels: serde_json::Map<String, serde_json::Value> =
            (0..num_labels).map(|i| (i.to_string(), serde_json::Value::String(format!("LABEL_{i}")))).collect();
        let ids: serde_json::Map<String, serde_json::Value> =
            (0..num_labels).map(|i| (format!("LABEL_{i}"), i.into())).collect();
        obj.insert("id2label".into(), labels.into());
        obj.insert("label2id".into(), ids.into());
        obj.remove("num_labels");
        for (key, value) in overrides {
            obj.insert((*key).to_owned(), value.clone());
        }
    }
    let config_path = dir.join("config.json");
    let config_bytes = serde_json::to_vec_pretty(&config).unwrap_or_default();
    write_atomic(&config_path, &config_bytes)?;
    let entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|t| {
            let (shape, values) = hf_values(t);
            (t.key.clone(), Dtype::F32, shape, f32_bytes(&values))
        })
        .collect();
    let meta = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let weights = serialize(&dir.join("model.safetensors"), &entries, meta)?;
    Ok(vec![Written { path: config_path, bytes: config_bytes.len() as u64 }, weights])
}

/// Write the compressed form of `tensors` under `masks` to `path`.
pub fn export_compressed(tensors: &[NamedTensor], masks: &MaskSet, path: &Path) -> Result<Written> {
    let masked: HashMap<&str, &crate::masks::Mask> = masks.masks.iter().map(|m| (m.key.as_str(), m)).collect();
    let mut entries = Vec::new();
    let mut shapes = BTreeMap::new();
    for t in tensors {
        let (shape, values) = hf_values(t);
        shapes.insert(t.key.clone(), shape.clone());
        match masked.get(t.key.as_str()) {
            Some(mask) => {
                let keep = mask.to_hf_bytes();
                let mut bits = vec![0u8; keep.len().div_ceil(8)];
                for (i, k) in keep.iter().enumerate() {
                    bits[i / 8] |= k << (i % 8);
                }
                let kept: Vec<f32> = values.iter().zip(&keep).filter(|(_, k)| **k == 1).map(|(v, _)| *v).collect();
                entries.push((format!("{}.mask", t.key), Dtype::U8, vec![bits.len()], bits));
                entries.push((format!("{}.values", t.key), Dtype::F32, vec![kept.len()], f32_bytes(&kept)));
            }
            None => entries.push((t.key.clone(), Dtype::F32, shape, f32_bytes(&values))),
        }
    }
    let meta = HashMap::from([
        ("format".to_owned(), COMPRESSED_FORMAT.to_owned()),
        ("shapes".to_owned(), serde_json::to_string(&shapes).unwrap_or_default()),
    ]);
    serialize(path, &entries, meta)
}

/// Dense tensors by Hugging Face key: `(shape, values)` in the Hugging Face layout.
pub type DenseTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Read a compressed checkpoint back into dense tensors (Hugging Face keys, shapes and layouts).
pub fn read_compressed(path: &Path) -> Result<DenseTensors> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let bad = |message: String| Error::Format { path: path.into(), message };
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta = metadata.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(COMPRESSED_FORMAT) {
        return Err(bad(format!("not a compressed prunelab checkpoint (no metadata format = {COMPRESSED_FORMAT})")));
    }
    let shapes: BTreeMap<String, Vec<usize>> = serde_json::from_str(meta.get("shapes").map_or("", String::as_str))
        .map_err(|e| bad(format!("metadata shapes: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let floats = |name: &str| -> Result<Vec<f32>> {
        let view = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("{name}: dtype {:?}, expected F32", view.dtype())));
        }
        Ok(view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    };
    let mut out = BTreeMap::new();
    for (key, shape) in shapes {
        let n = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= bytes.len().saturating_mul(8))
            .ok_or_else(|| {
                bad(format!("metadata shapes: {key} has shape {shape:?}, more values than the file holds"))
            })?;
        let values = match st.tensor(&format!("{key}.mask")) {
            Ok(bits) => {
                let bits = bits.data();
                if bits.len() != n.div_ceil(8) {
                    return Err(bad(format!("{key}.mask has {} bytes for {n} values", bits.len())));
                }
                let kept = floats(&format!("{key}.values"))?;
                let mut kept = kept.into_iter();
                let mut dense = Vec::with_capacity(n);
                for i in 0..n {
                    let keep = bits[i / 8] >> (i % 8) & 1 == 1;
                    dense.push(if keep {
                        kept.next().ok_or_else(|| bad(format!("{key}.values is too short")))?
                    } else {
                        0.0
                    });
                }
                if kept.next().is_some() {
                    return Err(bad(format!("{key}.values is longer than its mask allows")));
                }
                dense
            }
            Err(_) => floats(&key)?,
        };
        if values.len() != n {
            return Err(bad(format!("{key}: {} values for shape {shape:?}", values.len())));
        }
        out.insert(key, (shape, values));
    }
    Ok(out)
}
