//! The table of `cargo xtask bench`, computed from the records alone (so that a resumed run's
//! table covers every part): a row per measure, a cell per build, torch's figure and the
//! ratios; rendered as Markdown (`bench.md`) and CSV (`bench.csv`).

use std::fmt::Write as _;

use super::PEAK_TFLOPS;
use super::measure::{MLP_SHAPE, Tag, tagged};
use super::record::{Entry, Record, figure};

/// The table, from the records alone (so that a resumed run's table covers every part).
pub(super) fn table_rows(records: &[Entry], labels: &[&str]) -> Vec<Row> {
    let find = |tag: Tag<'_>| tagged(records, tag);
    let one = |tag: Tag<'_>| tagged(records, tag).into_iter().next();
    // A figure of the record `tag` finds (NaN without one).
    let value = |r: Option<&Record>, key: fn(&Record) -> Option<f64>| figure(r.and_then(key));
    let per_build = |tag: Tag<'_>, key: fn(&Record) -> Option<f64>| {
        labels.iter().map(|l| value(one(tag.build(l)), key)).collect::<Vec<_>>()
    };
    let sps = |r: &Record| r.samples_per_second;
    let first_step = |r: &Record| r.first_step_seconds;
    let mut rows = Vec::new();
    for (part, name) in [("gpt2-small", "GPT-2 small"), ("minilm", "MiniLM-L6")] {
        let t = |measure| Tag::new(part, measure);
        if one(t("train")).is_none() {
            continue;
        }
        let all_sps = |tag: Tag<'_>| find(tag).into_iter().map(|r| figure(r.samples_per_second)).collect::<Vec<_>>();
        let ours: Vec<Vec<f64>> = labels.iter().map(|l| all_sps(t("train").build(l))).collect();
        let medians: Vec<f64> = ours.iter().map(|v| median(v)).collect();
        let what = |against: &str| format!("{name}: fine-tune samples/s (batch 32 × 128), torch {against}");
        // f32 and (since 2026-12-08) TF32 alternate with every repeat; bf16 runs once, as did TF32
        // before: one run pairs with the first repeat, and its ratio is the medians' alone.
        for variant in ["f32", "tf32", "bf16", "bf16 + compile"] {
            let theirs = all_sps(t("torch-train").variant(variant));
            if !theirs.is_empty() {
                rows.push(Row::paired(what(variant), &ours, &theirs));
            }
        }
        if one(t("train-mixed")).is_some() {
            let mixed = per_build(t("train-mixed"), sps);
            rows.push(Row::new(
                format!("{name}: fine-tune samples/s (batch 32 × 128), prunelab bf16-mixed vs torch bf16"),
                &mixed,
                value(one(t("torch-train").variant("bf16")), sps),
            ));
            rows.push(Row::notes(
                format!("{name}: prunelab fine-tune speed, bf16-mixed ÷ f32"),
                mixed.iter().zip(&medians).map(|(m, f)| shown(m / f, |r| format!("{r:.2}×"))).collect(),
            ));
        }
        let params = value(one(t("parameters")), |r| r.parameters);
        let mfu = |sps: f64| 6.0 * params * sps * 128.0 / (PEAK_TFLOPS * 1e12);
        rows.push(Row::notes(
            format!("{name}: MFU of prunelab's fine-tune step (6·N·tokens/s ÷ {PEAK_TFLOPS} TFLOP/s)"),
            medians.iter().map(|&m| format!("{:.2} %", 100.0 * mfu(m))).collect(),
        ));
        let warm_first = per_build(t("train"), first_step);
        rows.push(Row::notes(
            format!("{name}: prunelab time to first step, cold → warm kernel cache"),
            labels
                .iter()
                .zip(&warm_first)
                .map(|(l, warm)| {
                    let cold = one(t("train-cold").build(l))
                        .map_or("not measured".to_owned(), |c| format!("{:.1} s", figure(c.first_step_seconds)));
                    format!("{cold} → {warm:.1} s")
                })
                .collect(),
        ));
        rows.push(Row::new_lower(
            format!(
                "{name}: seconds to the first step, prunelab with a warm kernel cache vs torch f32 (lower is better)"
            ),
            &warm_first,
            value(one(t("torch-train").variant("f32")), first_step),
        ));
        let infer = per_build(t("infer"), sps);
        for variant in ["f32", "tf32", "bf16"] {
            rows.push(Row::new(
                format!("{name}: eval samples/s (batch 64 × 128), torch {variant}"),
                &infer,
                value(one(t("torch-infer").variant(variant)), sps),
            ));
        }
    }
    if one(Tag::new("matmul", "matmul")).is_some() {
        let ours = per_build(Tag::new("matmul", "matmul"), |r| r.tflops);
        for variant in ["f32", "tf32", "bf16"] {
            rows.push(Row::new(
                format!("matmul 8192³ TFLOP/s, prunelab f32 vs torch {variant}"),
                &ours,
                value(one(Tag::new("matmul", "torch-matmul").variant(variant)), |r| r.tflops),
            ));
        }
        let arithmetic = |r: Option<&Record>| {
            r.map_or("not measured".to_owned(), |r| {
                format!("{} ({:.1e})", r.arithmetic.as_deref().unwrap_or("?"), figure(r.relative_error))
            })
        };
        rows.push(Row::notes(
            format!("prunelab's f32 matmul arithmetic (relative error against f64): 8192³; {MLP_SHAPE}"),
            labels
                .iter()
                .map(|l| {
                    let square = arithmetic(one(Tag::new("matmul", "matmul").build(l)));
                    let mlp = arithmetic(one(Tag::new("matmul", "matmul-mlp").build(l)));
                    format!("{square}; {mlp}")
                })
                .collect(),
        ));
    }
    if let Some(first) = one(Tag::new("prune", "prune")) {
        rows.push(Row::new_lower(
            format!(
                "global L1 prune 90 % of {:.1}M weights, seconds (lower is better)",
                figure(first.scope_params) / 1e6
            ),
            &per_build(Tag::new("prune", "prune"), |r| r.total_seconds),
            value(one(Tag::new("prune", "torch-prune")), |r| r.total_seconds),
        ));
    }
    if one(Tag::new("structured", "infer-compact")).is_some() {
        rows.push(Row::notes(
            "MiniLM-L6 structured 50 % (heads + neurons, compacted): prunelab eval speed-up over dense".into(),
            labels
                .iter()
                .map(|l| {
                    let dense = one(Tag::new("structured", "infer-dense").build(l));
                    let small = one(Tag::new("structured", "infer-compact").build(l));
                    format!(
                        "{:.2}× ({:.0} → {:.0} samples/s; {:.1}M → {:.1}M parameters)",
                        value(small, sps) / value(dense, sps),
                        value(dense, sps),
                        value(small, sps),
                        value(dense, |r| r.parameters) / 1e6,
                        value(small, |r| r.parameters) / 1e6
                    )
                })
                .collect(),
        ));
    }
    rows
}

/// The median (the mean of the middle two for an even count; NaN for none).
pub(super) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One table line: a cell per build, and torch's figure when the line compares.
pub(super) struct Row {
    pub(super) what: String,
    cells: Vec<Cell>,
    theirs: Option<f64>,
    /// For times: ratio = theirs / ours, so > 1 means prunelab is faster either way.
    lower_is_better: bool,
}

pub(super) enum Cell {
    /// A measured figure, and the range of the paired ratios when it was measured repeatedly.
    Value {
        value: f64,
        range: Option<(f64, f64)>,
    },
    Note(String),
}

impl Row {
    pub(super) fn new(what: String, ours: &[f64], theirs: f64) -> Self {
        let cells = ours.iter().map(|&value| Cell::Value { value, range: None }).collect();
        Self { what, cells, theirs: Some(theirs), lower_is_better: false }
    }
    pub(super) fn new_lower(what: String, ours: &[f64], theirs: f64) -> Self {
        Self { lower_is_better: true, ..Self::new(what, ours, theirs) }
    }
    pub(super) fn notes(what: String, notes: Vec<String>) -> Self {
        Self { what, cells: notes.into_iter().map(Cell::Note).collect(), theirs: None, lower_is_better: false }
    }
    /// Alternated runs: `ours[build][repeat]` against `theirs[repeat]`. Medians, and the range
    /// of `ours[b][r] / theirs[r]` over the repeats when there are several.
    pub(super) fn paired(what: String, ours: &[Vec<f64>], theirs: &[f64]) -> Self {
        let cells = ours
            .iter()
            .map(|runs| {
                let ratios: Vec<f64> = runs.iter().zip(theirs).map(|(o, t)| o / t).collect();
                let range = (ratios.len() > 1).then(|| {
                    ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| (lo.min(r), hi.max(r)))
                });
                Cell::Value { value: median(runs), range }
            })
            .collect();
        Self { what, cells, theirs: Some(median(theirs)), lower_is_better: false }
    }
    /// The speed ratio of build `i` (> 1: prunelab faster) and its paired range.
    pub(super) fn ratio(&self, i: usize) -> Option<(f64, Option<(f64, f64)>)> {
        match (self.cells.get(i), self.theirs) {
            (Some(Cell::Value { value, range }), Some(t)) if self.lower_is_better => {
                Some((t / value, range.map(|(lo, hi)| (1.0 / hi, 1.0 / lo))))
            }
            (Some(Cell::Value { value, range }), Some(t)) => Some((value / t, *range)),
            _ => None,
        }
    }
}

/// `x` formatted, or "not measured" for a figure no record gave (NaN): a build that skipped a
/// measure (bf16 runs only on the first build) leaves its cell so.
fn shown(x: f64, format: impl Fn(f64) -> String) -> String {
    if x.is_nan() { "not measured".to_owned() } else { format(x) }
}

/// The Markdown table: a prunelab column and a ratio column per build.
pub(super) fn render(labels: &[&str], rows: &[Row]) -> String {
    let mut out = String::from("| measure |");
    for l in labels {
        let _ = write!(out, " prunelab {l} |");
    }
    out.push_str(" torch |");
    for l in labels {
        let _ = write!(out, " {l} ÷ torch (speed) |");
    }
    out.push_str(&format!("\n|---|{}---|{}\n", "---|".repeat(labels.len()), "---|".repeat(labels.len())));
    // An empty cell is " |".
    let put = |out: &mut String, text: String| {
        let _ = if text.is_empty() { write!(out, " |") } else { write!(out, " {text} |") };
    };
    for r in rows {
        let _ = write!(out, "| {} |", r.what);
        for i in 0..labels.len() {
            let cell = match r.cells.get(i) {
                Some(Cell::Value { value, .. }) => shown(*value, |v| format!("{v:.3}")),
                Some(Cell::Note(note)) => note.clone(),
                None => String::new(),
            };
            put(&mut out, cell);
        }
        put(&mut out, r.theirs.map_or(String::new(), |t| format!("{t:.3}")));
        for i in 0..labels.len() {
            let ratio = match r.ratio(i) {
                Some((ratio, _)) if ratio.is_nan() => String::new(),
                Some((ratio, Some((lo, hi)))) => format!("{ratio:.2}× ({lo:.2}–{hi:.2})"),
                Some((ratio, None)) => format!("{ratio:.2}×"),
                None => String::new(),
            };
            put(&mut out, ratio);
        }
        out.push('\n');
    }
    out
}

/// The same rows as CSV: per build its figure (or note), ratio and paired ratio range.
pub(super) fn csv(labels: &[&str], rows: &[Row]) -> String {
    let mut out = String::from("measure");
    for l in labels {
        let _ = write!(out, ",prunelab {l}");
    }
    out.push_str(",torch");
    for l in labels {
        let _ = write!(out, ",ratio {l},ratio min {l},ratio max {l}");
    }
    out.push('\n');
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for r in rows {
        out.push_str(&quote(&r.what));
        for i in 0..labels.len() {
            out.push(',');
            match r.cells.get(i) {
                Some(Cell::Value { value, .. }) => out.push_str(&value.to_string()),
                Some(Cell::Note(note)) => out.push_str(&quote(note)),
                None => {}
            }
        }
        let _ = write!(out, ",{}", r.theirs.map_or(String::new(), |t| t.to_string()));
        for i in 0..labels.len() {
            match r.ratio(i) {
                Some((ratio, range)) => {
                    let (lo, hi) = range
                        .map_or((String::new(), String::new()), |(lo, hi)| (format!("{lo:.4}"), format!("{hi:.4}")));
                    let _ = write!(out, ",{ratio:.4},{lo},{hi}");
                }
                None => out.push_str(",,,"),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_no_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn paired_rows_give_medians_and_the_range_of_per_repeat_ratios() {
        // Build a: 400, 500, 450 against torch 500, 500, 450 → ratios 0.8, 1.0, 1.0.
        let row =
            Row::paired("x".into(), &[vec![400.0, 500.0, 450.0], vec![250.0, 250.0, 225.0]], &[500.0, 500.0, 450.0]);
        let (ratio, range) = row.ratio(0).unwrap();
        assert!((ratio - 0.9).abs() < 1e-12, "{ratio}"); // 450 / 500
        assert_eq!(range, Some((0.8, 1.0)));
        let table = render(&["a", "b"], &[row]);
        let line = table.lines().nth(2).unwrap();
        assert_eq!(line, "| x | 450.000 | 250.000 | 500.000 | 0.90× (0.80–1.00) | 0.50× (0.50–0.50) |");
        assert!(table.starts_with("| measure | prunelab a | prunelab b | torch | a ÷ torch (speed) | b ÷ torch (speed) |\n|---|---|---|---|---|---|\n"));
    }

    #[test]
    fn times_invert_the_ratio_and_notes_have_none() {
        let rows =
            [Row::new_lower("prune s".into(), &[2.0], 8.0), Row::notes("first step".into(), vec!["0.2 s".into()])];
        assert_eq!(rows[0].ratio(0), Some((4.0, None)));
        assert_eq!(rows[1].ratio(0), None);
        let csv = csv(&["cuda"], &rows);
        assert_eq!(
            csv,
            "measure,prunelab cuda,torch,ratio cuda,ratio min cuda,ratio max cuda\n\"prune s\",2,8,4.0000,,\n\"first step\",\"0.2 s\",,,,\n"
        );
    }

    #[test]
    fn model_rows_pair_each_build_with_the_torch_run_of_its_repeat() {
        let mut records = Vec::new();
        for (r, (cuda, fused, torch)) in
            [(280.0, 470.0, 475.0), (275.0, 506.0, 477.0), (281.0, 465.0, 475.0)].into_iter().enumerate()
        {
            let r = r as u32;
            for (label, sps) in [("cuda", cuda), ("fused", fused)] {
                let record =
                    serde_json::json!({ "samples_per_second": sps, "first_step_seconds": 0.5, "backend": "cuda" });
                let tag = Tag::new("gpt2-small", "train").build(label).repeat(r);
                records.push(Entry::Record(Box::new(tag.apply(record).unwrap())));
            }
            let record = serde_json::json!({ "samples_per_second": torch, "first_step_seconds": 0.6 });
            let tag = Tag::new("gpt2-small", "torch-train").variant("f32").repeat(r);
            records.push(Entry::Record(Box::new(tag.apply(record).unwrap())));
        }
        let rows = table_rows(&records, &["cuda", "fused"]);
        assert_eq!(rows[0].what, "GPT-2 small: fine-tune samples/s (batch 32 × 128), torch f32");
        let (ratio, range) = rows[0].ratio(1).unwrap();
        assert!((ratio - 470.0 / 475.0).abs() < 1e-12);
        let (lo, hi) = range.unwrap();
        assert!((lo - 465.0 / 475.0).abs() < 1e-12 && (hi - 506.0 / 477.0).abs() < 1e-12);
        assert!((rows[0].ratio(0).unwrap().0 - 280.0 / 475.0).abs() < 1e-12);
    }

    /// Since 2026-12-08 torch TF32 runs with every repeat: its row pairs them like f32's, while a
    /// single bf16 run still gives the medians' ratio alone.
    #[test]
    fn tf32_runs_of_every_repeat_pair_with_that_repeat() {
        let mut records = Vec::new();
        let mut push = |tag: Tag<'_>, sps: f64| {
            let record = serde_json::json!({ "samples_per_second": sps, "first_step_seconds": 0.5 });
            records.push(Entry::Record(Box::new(tag.apply(record).unwrap())));
        };
        for (r, (ours, f32, tf32)) in [(100.0, 50.0, 80.0), (120.0, 60.0, 130.0)].into_iter().enumerate() {
            let r = r as u32;
            push(Tag::new("minilm", "train").build("cuda").repeat(r), ours);
            push(Tag::new("minilm", "torch-train").variant("f32").repeat(r), f32);
            push(Tag::new("minilm", "torch-train").variant("tf32").repeat(r), tf32);
        }
        push(Tag::new("minilm", "torch-train").variant("bf16"), 88.0);
        let rows = table_rows(&records, &["cuda"]);
        let row = |variant: &str| {
            let what = format!("MiniLM-L6: fine-tune samples/s (batch 32 × 128), torch {variant}");
            rows.iter().find(|r| r.what == what).unwrap_or_else(|| panic!("no {variant} row")).ratio(0).unwrap()
        };
        // Medians 110 / 105; paired 100 / 80 = 1.25 and 120 / 130 ≈ 0.923.
        let (ratio, range) = row("tf32");
        assert!((ratio - 110.0 / 105.0).abs() < 1e-12, "{ratio}");
        let (lo, hi) = range.unwrap();
        assert!((lo - 120.0 / 130.0).abs() < 1e-12 && (hi - 1.25).abs() < 1e-12, "{lo} {hi}");
        assert_eq!(row("f32"), (110.0 / 55.0, Some((2.0, 2.0))));
        assert_eq!(row("bf16"), (110.0 / 88.0, None));
    }

    #[test]
    fn a_committed_bench_json_renders_its_committed_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/h200-2026-11-30b");
        let entries: Vec<Entry> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap()).unwrap();
        let labels = ["cuda", "fused"];
        let rows = table_rows(&entries, &labels);
        assert_eq!(render(&labels, &rows), std::fs::read_to_string(dir.join("bench.md")).unwrap());
    }

    /// The wgpu call (2026-12-06): bf16 runs only on the first build, so the wgpu column has no
    /// bf16 figure, which reads "not measured" (it read "NaN" before), and its ratio is empty.
    #[test]
    fn a_measure_one_build_skipped_reads_not_measured() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/h100-2026-12-06-wgpu");
        let entries: Vec<Entry> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap()).unwrap();
        let labels = ["cuda", "wgpu"];
        let table = render(&labels, &table_rows(&entries, &labels));
        assert!(!table.contains("NaN"), "{table}");
        let mixed = table.lines().find(|l| l.contains("prunelab bf16-mixed vs torch bf16")).unwrap();
        assert!(mixed.starts_with("| MiniLM-L6: fine-tune samples/s (batch 32 × 128), prunelab bf16-mixed vs torch bf16 | 732.867 | not measured | 1333.254 | 0.55× | |"), "{mixed}");
        assert_eq!(table, std::fs::read_to_string(dir.join("bench.md")).unwrap());
    }
}
