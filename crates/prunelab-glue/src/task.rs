//! The GLUE task table: everything task-specific lives in one [`TaskSpec`] per task.
//!
//! Adding a GLUE task is adding a `TaskSpec` constant and a [`GlueTask`] variant: the TSV
//! reader, the parquet reader, the tokenizer (sentence pairs included) and the metrics are
//! driven by the table alone.

use std::fmt;

/// A split of a GLUE task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data, labelled.
    Train,
    /// The development (validation) set, labelled; GLUE's evaluation split for us.
    Dev,
    /// The test set: unlabelled, predictions are submitted to the GLUE server.
    Test,
}

impl Split {
    /// All splits, in the order they are reported.
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    /// The file stem in the GLUE TSV layout (`train`, `dev`, `test`).
    pub fn tsv_stem(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }

    /// The split name in Hugging Face `datasets` (`train`, `validation`, `test`).
    pub fn hub_name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "validation",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tsv_stem())
    }
}

pub use prunelab_record::MainMetric;

/// How one TSV file of a task is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsvLayout {
    /// The exact header line, tab-separated, or `None` for a file without one.
    pub header: Option<&'static str>,
    /// Number of tab-separated columns of every row.
    pub columns: usize,
    /// Column of the first (or only) sentence.
    pub text_a: usize,
    /// Column of the second sentence, for sentence-pair tasks.
    pub text_b: Option<usize>,
    /// Column of the label, for labelled files.
    pub label: Option<usize>,
    /// Column of the example index, for files that carry one (test files).
    pub index: Option<usize>,
}

/// One GLUE task: names, file layouts, labels and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSpec {
    /// Lower-case name used on the command line and in result files (`sst2`).
    pub name: &'static str,
    /// Directory name in the GLUE TSV layout (`SST-2`).
    pub dir: &'static str,
    /// Config name of the Hugging Face dataset `nyu-mll/glue` (`sst2`).
    pub hub_config: &'static str,
    /// Column names of the text fields in the Hub parquet files (one, or two for pairs).
    pub hub_text_columns: &'static [&'static str],
    /// Label values as written in the TSV files, in class-id order (`["0", "1"]`).
    pub label_values: &'static [&'static str],
    /// Human-readable class names, in class-id order (the `datasets` `ClassLabel` names).
    pub class_names: &'static [&'static str],
    /// Layout of `train.tsv` and `dev.tsv`.
    pub labelled: TsvLayout,
    /// Layout of `test.tsv`.
    pub test: TsvLayout,
    /// The leaderboard metric.
    pub main_metric: MainMetric,
}

impl TaskSpec {
    /// Number of classes.
    pub fn num_labels(&self) -> usize {
        self.label_values.len()
    }

    /// Whether examples are sentence pairs.
    pub fn is_pair(&self) -> bool {
        self.labelled.text_b.is_some()
    }

    /// The layout of the TSV file of `split`.
    pub fn layout(&self, split: Split) -> &TsvLayout {
        match split {
            Split::Train | Split::Dev => &self.labelled,
            Split::Test => &self.test,
        }
    }
}

/// Single-sentence GLUE test files: `index\tsentence` with a header.
const SINGLE_SENTENCE_TEST: TsvLayout =
    TsvLayout { header: Some("index\tsentence"), columns: 2, text_a: 1, text_b: None, label: None, index: Some(0) };

/// SST-2: binary sentiment of movie-review phrases (Socher et al., 2013).
pub const SST2: TaskSpec = TaskSpec {
    name: "sst2",
    dir: "SST-2",
    hub_config: "sst2",
    hub_text_columns: &["sentence"],
    label_values: &["0", "1"],
    class_names: &["negative", "positive"],
    labelled: TsvLayout {
        header: Some("sentence\tlabel"),
        columns: 2,
        text_a: 0,
        text_b: None,
        label: Some(1),
        index: None,
    },
    test: SINGLE_SENTENCE_TEST,
    main_metric: MainMetric::Accuracy,
};

/// CoLA: grammatical acceptability (Warstadt et al., 2019). Train/dev files have no header and
/// four columns: source, label, the author's original mark, sentence.
pub const COLA: TaskSpec = TaskSpec {
    name: "cola",
    dir: "CoLA",
    hub_config: "cola",
    hub_text_columns: &["sentence"],
    label_values: &["0", "1"],
    class_names: &["unacceptable", "acceptable"],
    labelled: TsvLayout { header: None, columns: 4, text_a: 3, text_b: None, label: Some(1), index: None },
    test: SINGLE_SENTENCE_TEST,
    main_metric: MainMetric::Matthews,
};

/// The GLUE tasks prunelab supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum GlueTask {
    /// Stanford Sentiment Treebank, binary (accuracy).
    Sst2,
    /// Corpus of Linguistic Acceptability (Matthews correlation).
    Cola,
}

impl GlueTask {
    /// Every supported task.
    pub const ALL: [GlueTask; 2] = [GlueTask::Sst2, GlueTask::Cola];

    /// The task's table entry.
    pub fn spec(self) -> &'static TaskSpec {
        match self {
            GlueTask::Sst2 => &SST2,
            GlueTask::Cola => &COLA,
        }
    }

    /// Parse a task name (`sst2`, `sst-2`, `cola`; case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        let norm: String = name.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
        Self::ALL.into_iter().find(|t| t.spec().name == norm)
    }
}

impl fmt::Display for GlueTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec().name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for task in GlueTask::ALL {
            assert_eq!(GlueTask::from_name(task.spec().name), Some(task));
            assert_eq!(GlueTask::from_name(task.spec().dir), Some(task));
        }
        assert_eq!(GlueTask::from_name("mnli"), None);
    }

    #[test]
    fn layouts_are_consistent() {
        for task in GlueTask::ALL {
            let spec = task.spec();
            for layout in [spec.labelled, spec.test] {
                let cols = [Some(layout.text_a), layout.text_b, layout.label, layout.index];
                assert!(cols.iter().flatten().all(|&c| c < layout.columns), "{}", spec.name);
                if let Some(h) = layout.header {
                    assert_eq!(h.split('\t').count(), layout.columns, "{}", spec.name);
                }
            }
            assert_eq!(spec.label_values.len(), spec.class_names.len());
            assert_eq!(spec.hub_text_columns.len(), if spec.is_pair() { 2 } else { 1 });
        }
    }
}
