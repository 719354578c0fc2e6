//! In-memory GLUE examples and splits, independent of where they were read from.

use std::path::PathBuf;

use crate::task::{GlueTask, Split};

/// One example of a GLUE split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    /// The example's index: the `index` column of test files, else the 0-based row number
    /// (the `idx` of Hugging Face `datasets`).
    pub idx: u32,
    /// The first (or only) sentence, exactly as in the file.
    pub text_a: String,
    /// The second sentence of sentence-pair tasks.
    pub text_b: Option<String>,
    /// The class id, `None` for unlabelled (test) examples.
    pub label: Option<u32>,
}

/// A split of a task held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct GlueSplit {
    /// The task.
    pub task: GlueTask,
    /// The split.
    pub split: Split,
    /// Where the examples came from (a TSV or parquet file).
    pub source: PathBuf,
    /// The examples, in file order.
    pub examples: Vec<Example>,
}

impl GlueSplit {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether the split has no example.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Count of examples per class id (length = number of classes); unlabelled examples are
    /// not counted.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.task.spec().num_labels()];
        for label in self.examples.iter().filter_map(|e| e.label) {
            counts[label as usize] += 1;
        }
        counts
    }

    /// Keep the first `n` examples (for quick runs on data subsets).
    pub fn truncate(&mut self, n: usize) {
        self.examples.truncate(n);
    }
}
