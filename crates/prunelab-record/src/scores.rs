//! The scores of one evaluation on a GLUE split (computed by `prunelab-glue`'s metrics).

/// The metric a task is ranked by, as the GLUE leaderboard defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MainMetric {
    /// Fraction of correct predictions.
    Accuracy,
    /// Matthews correlation coefficient.
    Matthews,
    /// F1 of the positive class.
    F1,
}

impl MainMetric {
    /// The metric's short name as it appears in result files.
    pub fn name(self) -> &'static str {
        match self {
            MainMetric::Accuracy => "accuracy",
            MainMetric::Matthews => "mcc",
            MainMetric::F1 => "f1",
        }
    }
}

/// The metrics of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Accuracy.
    pub accuracy: f64,
    /// Matthews correlation coefficient.
    pub mcc: f64,
    /// F1 of class 1.
    pub f1: f64,
    /// Which metric the task is ranked by.
    pub main: MainMetric,
    /// The value of that metric.
    pub main_value: f64,
    /// Whether the model predicted one class only.
    pub collapsed: bool,
    /// Examples evaluated.
    pub examples: u64,
}
