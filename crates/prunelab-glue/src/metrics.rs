//! GLUE metrics, defined exactly as scikit-learn defines them.
//!
//! | metric | scikit-learn | degenerate case |
//! |---|---|---|
//! | accuracy | `accuracy_score` | empty input: NaN |
//! | Matthews correlation | `matthews_corrcoef` (multiclass form; binary is the special case) | 0 when the denominator is 0 |
//! | F1 of class 1 | `f1_score(average="binary", pos_label=1)` | 0 when there is no true or predicted positive (`zero_division=0`) |

use crate::task::MainMetric;

/// A confusion matrix: `counts[truth][prediction]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Confusion {
    counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// An empty matrix over `num_classes` classes (it grows if a larger class id is added).
    pub fn new(num_classes: usize) -> Self {
        Self { counts: vec![vec![0; num_classes]; num_classes] }
    }

    /// A matrix from `(truth, prediction)` pairs.
    pub fn from_pairs(num_classes: usize, pairs: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut matrix = Self::new(num_classes);
        for (truth, prediction) in pairs {
            matrix.add(truth, prediction);
        }
        matrix
    }

    /// Count one example.
    pub fn add(&mut self, truth: u32, prediction: u32) {
        let needed = truth.max(prediction) as usize + 1;
        if needed > self.counts.len() {
            for row in &mut self.counts {
                row.resize(needed, 0);
            }
            self.counts.resize(needed, vec![0; needed]);
        }
        self.counts[truth as usize][prediction as usize] += 1;
    }

    /// Number of examples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Examples per true class.
    pub fn true_counts(&self) -> Vec<u64> {
        self.counts.iter().map(|row| row.iter().sum()).collect()
    }

    /// Examples per predicted class.
    pub fn predicted_counts(&self) -> Vec<u64> {
        (0..self.counts.len()).map(|p| self.counts.iter().map(|row| row[p]).sum()).collect()
    }

    /// Fraction of correct predictions; NaN for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        correct as f64 / self.total() as f64
    }

    /// Matthews correlation coefficient (scikit-learn's multiclass formula).
    pub fn mcc(&self) -> f64 {
        let n = self.total() as f64;
        let t = self.true_counts();
        let p = self.predicted_counts();
        let correct: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        let dot = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>();
        let cov_ytyp = correct as f64 * n - dot(&t, &p);
        let cov_ypyp = n * n - dot(&p, &p);
        let cov_ytyt = n * n - dot(&t, &t);
        if cov_ypyp * cov_ytyt == 0.0 { 0.0 } else { cov_ytyp / (cov_ytyt * cov_ypyp).sqrt() }
    }

    /// F1 of class `positive`; 0 when there is no true or predicted positive.
    pub fn f1(&self, positive: u32) -> f64 {
        let k = positive as usize;
        if k >= self.counts.len() {
            return 0.0;
        }
        let tp = self.counts[k][k] as f64;
        let fp = self.predicted_counts()[k] as f64 - tp;
        let fn_ = self.true_counts()[k] as f64 - tp;
        let denominator = 2.0 * tp + fp + fn_;
        if denominator == 0.0 { 0.0 } else { 2.0 * tp / denominator }
    }

    /// Whether every prediction is the same class (a collapsed classifier); false when empty.
    pub fn is_collapsed(&self) -> bool {
        self.predicted_counts().iter().filter(|&&c| c > 0).count() == 1
    }

    /// All metrics of a classification task.
    pub fn scores(&self, main: MainMetric) -> Scores {
        let (accuracy, mcc, f1) = (self.accuracy(), self.mcc(), self.f1(1));
        let main_value = match main {
            MainMetric::Accuracy => accuracy,
            MainMetric::Matthews => mcc,
            MainMetric::F1 => f1,
        };
        Scores { accuracy, mcc, f1, main, main_value, collapsed: self.is_collapsed(), examples: self.total() }
    }
}

pub use prunelab_record::Scores;

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(truth: &[u32], pred: &[u32]) -> Confusion {
        Confusion::from_pairs(2, truth.iter().copied().zip(pred.iter().copied()))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_binary_case() {
        // tp=2 (idx 0,1), fn=1 (idx 2), fp=1 (idx 3), tn=2 (idx 4,5)
        let m = matrix(&[1, 1, 1, 0, 0, 0], &[1, 1, 0, 1, 0, 0]);
        assert!(close(m.accuracy(), 4.0 / 6.0));
        // (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (4-1)/sqrt(3*3*3*3) = 1/3
        assert!(close(m.mcc(), 1.0 / 3.0));
        // precision 2/3, recall 2/3
        assert!(close(m.f1(1), 2.0 / 3.0));
    }

    #[test]
    fn perfect_and_inverted_predictions() {
        let truth = [0, 1, 1, 0, 1];
        let inverted: Vec<u32> = truth.iter().map(|t| 1 - t).collect();
        assert!(close(matrix(&truth, &truth).mcc(), 1.0));
        assert!(close(matrix(&truth, &inverted).mcc(), -1.0));
        assert!(close(matrix(&truth, &inverted).accuracy(), 0.0));
        assert!(close(matrix(&truth, &inverted).f1(1), 0.0));
    }

    #[test]
    fn constant_predictions_give_zero_mcc_and_are_collapsed() {
        let m = matrix(&[0, 1, 1, 1], &[1, 1, 1, 1]);
        assert_eq!(m.mcc(), 0.0, "denominator 0 gives 0, as scikit-learn");
        assert!(close(m.accuracy(), 0.75));
        assert!(close(m.f1(1), 6.0 / 7.0));
        assert!(m.is_collapsed());
        assert!(!matrix(&[0, 1], &[0, 1]).is_collapsed());
    }

    #[test]
    fn no_positives_anywhere_gives_zero_f1() {
        let m = matrix(&[0, 0, 0], &[0, 0, 0]);
        assert_eq!(m.f1(1), 0.0);
        assert_eq!(m.mcc(), 0.0, "a single true class also gives 0");
        assert!(close(m.accuracy(), 1.0));
    }

    #[test]
    fn empty_input() {
        let m = Confusion::new(2);
        assert!(m.accuracy().is_nan());
        assert_eq!(m.mcc(), 0.0);
        assert_eq!(m.f1(1), 0.0);
        assert!(!m.is_collapsed());
    }

    #[test]
    fn multiclass_mcc_matches_scikit_learn() {
        // sklearn.metrics.matthews_corrcoef([0,1,2,0,1,2,2], [0,2,1,0,1,2,0])
        // C = [[2,0,0],[0,1,1],[1,1,1]]; t=[2,2,3], p=[3,2,2], correct=4, n=7:
        // (4*7 - (6+4+6)) / sqrt((49-17)*(49-17)) = 12/32 = 0.375
        let m = Confusion::from_pairs(3, [(0, 0), (1, 2), (2, 1), (0, 0), (1, 1), (2, 2), (2, 0)]);
        assert!(close(m.mcc(), 0.375));
    }

    #[test]
    fn scores_mark_the_main_metric() {
        let s = matrix(&[1, 0, 1, 0], &[1, 0, 0, 0]).scores(MainMetric::Matthews);
        assert_eq!(s.main_value, s.mcc);
        assert_eq!(s.examples, 4);
        // tp=1 fn=1 fp=0 tn=2: (2-0)/sqrt(1*2*2*3)
        assert!(close(s.mcc, 2.0 / 12f64.sqrt()));
    }

    #[test]
    fn growing_beyond_declared_classes() {
        let mut m = Confusion::new(2);
        m.add(3, 3);
        m.add(0, 3);
        assert_eq!(m.true_counts(), [1, 0, 0, 1]);
        assert_eq!(m.predicted_counts(), [0, 0, 0, 2]);
    }
}
