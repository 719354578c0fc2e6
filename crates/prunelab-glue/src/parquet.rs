//! Reader for the parquet files of the Hugging Face dataset `nyu-mll/glue`, and (with the `hub`
//! feature) their download through the Hugging Face cache.
//!
//! The files are `<config>/<split>-00000-of-00001.parquet` with the columns of the task's text
//! fields, `label` (a class id, `-1` in the unlabelled test split) and `idx`.

use std::fs::File;
use std::path::Path;

use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::example::{Example, GlueSplit};
use crate::task::{GlueTask, Split, TaskSpec};

/// The Hub dataset GLUE is downloaded from.
pub const HUB_DATASET: &str = "nyu-mll/glue";

/// The file of `split` of `task` inside the Hub dataset repository.
pub fn hub_file(task: GlueTask, split: Split) -> String {
    format!("{}/{}-00000-of-00001.parquet", task.spec().hub_config, split.hub_name())
}

/// Download (or find in the cache) `split` of `task` from the Hub and read it.
#[cfg(feature = "hub")]
pub fn download_split(hub: &prunelab_hub::Hub, revision: &str, task: GlueTask, split: Split) -> Result<GlueSplit> {
    let repo = prunelab_hub::HubRepo::dataset(HUB_DATASET).at_revision(revision);
    let path = hub.fetch(&repo, &hub_file(task, split))?;
    read_parquet(&path, task, split)
}

/// Read a GLUE parquet file as `split` of `task`.
pub fn read_parquet(path: &Path, task: GlueTask, split: Split) -> Result<GlueSplit> {
    let parquet_err = |source| Error::Parquet { path: path.into(), source };
    let file = File::open(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?.build().map_err(parquet_err)?;
    let spec = task.spec();
    let mut examples = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(e.into()))?;
        read_batch(&batch, path, spec, split, &mut examples)?;
    }
    if examples.is_empty() {
        return Err(Error::EmptySplit { path: path.into(), task: spec.name, split: split.to_string() });
    }
    tracing::debug!(path = %path.display(), rows = examples.len(), "read GLUE parquet");
    Ok(GlueSplit { task, split, source: path.into(), examples })
}

fn read_batch(batch: &RecordBatch, path: &Path, spec: &TaskSpec, split: Split, out: &mut Vec<Example>) -> Result<()> {
    let column = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| Error::ParquetSchema {
            path: path.into(),
            message: format!("no column {name:?} (columns: {})", column_names(batch)),
        })
    };
    let text_a = column(spec.hub_text_columns[0])?;
    let text_b = spec.hub_text_columns.get(1).map(|name| column(name)).transpose()?;
    let label = column("label")?;
    let idx = column("idx")?;
    for row in 0..batch.num_rows() {
        let row_number = (out.len() + 1) as u64;
        let cell_err = |name: &str, what: &str| Error::ParquetSchema {
            path: path.into(),
            message: format!("row {row_number}: column {name:?} {what}"),
        };
        let text = |col: &dyn Array, name: &str| {
            string_at(col, row).map(str::to_owned).ok_or_else(|| cell_err(name, "is not a non-null string"))
        };
        let raw_label = int_at(label.as_ref(), row).ok_or_else(|| cell_err("label", "is not a non-null integer"))?;
        let label = match (split, raw_label) {
            (Split::Test, -1) => None,
            (_, l) if (0..spec.num_labels() as i64).contains(&l) => Some(l as u32),
            (_, l) => {
                return Err(Error::Label {
                    path: path.into(),
                    line: row_number,
                    value: l.to_string(),
                    allowed: (0..spec.num_labels()).map(|i| i.to_string()).collect(),
                });
            }
        };
        let idx = int_at(idx.as_ref(), row)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| cell_err("idx", "is not a non-negative integer"))?;
        out.push(Example {
            idx,
            text_a: text(text_a.as_ref(), spec.hub_text_columns[0])?,
            text_b: text_b.map(|col| text(col.as_ref(), spec.hub_text_columns[1])).transpose()?,
            label,
        });
    }
    Ok(())
}

fn column_names(batch: &RecordBatch) -> String {
    batch.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

fn string_at(col: &dyn Array, row: usize) -> Option<&str> {
    use arrow_array::{LargeStringArray, StringArray, StringViewArray};
    if col.is_null(row) {
        return None;
    }
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<StringArray>() {
        Some(a.value(row))
    } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
        Some(a.value(row))
    } else {
        any.downcast_ref::<StringViewArray>().map(|a| a.value(row))
    }
}

fn int_at(col: &dyn Array, row: usize) -> Option<i64> {
    use arrow_array::{Int8Array, Int16Array, Int32Array, Int64Array, UInt8Array, UInt16Array, UInt32Array};
    if col.is_null(row) {
        return None;
    }
    let any = col.as_any();
    macro_rules! try_int {
        ($($t:ty),*) => {$(
            if let Some(a) = any.downcast_ref::<$t>() {
                return Some(i64::from(a.value(row)));
            }
        )*};
    }
    try_int!(Int64Array, Int32Array, Int16Array, Int8Array, UInt32Array, UInt16Array, UInt8Array);
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int32Array, Int64Array, StringArray};
    use parquet::arrow::ArrowWriter;

    use super::*;

    fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn glue_columns(sentences: &[&str], labels: &[i64]) -> Vec<(&'static str, ArrayRef)> {
        vec![
            ("sentence", Arc::new(StringArray::from(sentences.to_vec())) as ArrayRef),
            ("label", Arc::new(Int64Array::from(labels.to_vec()))),
            ("idx", Arc::new(Int32Array::from_iter_values(0..sentences.len() as i32))),
        ]
    }

    #[test]
    fn reads_sentences_labels_and_idx() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.parquet");
        write(&path, glue_columns(&["a fine film ", "a dull one "], &[1, 0]));
        let split = read_parquet(&path, GlueTask::Sst2, Split::Dev).unwrap();
        assert_eq!(split.examples.len(), 2);
        assert_eq!(split.examples[0], Example { idx: 0, text_a: "a fine film ".into(), text_b: None, label: Some(1) });
        assert_eq!(split.label_counts(), [1, 1]);
    }

    #[test]
    fn test_split_labels_are_minus_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write(&path, glue_columns(&["x", "y"], &[-1, -1]));
        let split = read_parquet(&path, GlueTask::Cola, Split::Test).unwrap();
        assert!(split.examples.iter().all(|e| e.label.is_none()));
        // ...but -1 in a labelled split is an error naming the row.
        let err = read_parquet(&path, GlueTask::Cola, Split::Train).unwrap_err();
        assert!(err.to_string().ends_with("t.parquet:1: label \"-1\" is not one of 0, 1"), "{err}");
    }

    #[test]
    fn missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.parquet");
        write(&path, vec![("text", Arc::new(StringArray::from(vec!["a"])) as ArrayRef)]);
        let err = read_parquet(&path, GlueTask::Sst2, Split::Train).unwrap_err();
        assert!(err.to_string().ends_with("no column \"sentence\" (columns: text)"), "{err}");
    }

    #[test]
    fn not_a_parquet_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.parquet");
        std::fs::write(&path, b"sentence\tlabel\n").unwrap();
        let err = read_parquet(&path, GlueTask::Sst2, Split::Train).unwrap_err();
        assert!(matches!(err, Error::Parquet { .. }), "{err}");
    }

    #[cfg(feature = "hub")]
    #[test]
    fn offline_hub_reads_the_cached_file() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("datasets--nyu-mll--glue");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "c0ffee").unwrap();
        let file = repo.join("snapshots/c0ffee").join(hub_file(GlueTask::Cola, Split::Dev));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        write(&file, glue_columns(&["Bill left.", "Left Bill the."], &[1, 0]));

        let hub = prunelab_hub::Hub::new(cache.path(), true);
        let split = download_split(&hub, "main", GlueTask::Cola, Split::Dev).unwrap();
        assert_eq!(split.label_counts(), [1, 1]);
        let err = download_split(&hub, "main", GlueTask::Cola, Split::Train).unwrap_err();
        assert!(err.to_string().starts_with("cola/train-00000-of-00001.parquet of dataset:nyu-mll/glue@main"), "{err}");
    }
}
