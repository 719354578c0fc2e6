//! Number formatting shared by the tables and the report.

use crate::aggregate::Stat;

/// An amount as written in the grid: `0`, `0.5`, `0.95`.
pub(crate) fn amount(a: f64) -> String {
    let text = format!("{:.6}", a);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" { "0".into() } else { text.into() }
}

/// An integer with thousands separators: `12,067,202`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits.as_bytes().rchunks(3).rev().map(|g| std::str::from_utf8(g).unwrap_or("")).collect();
    groups.join(",")
}

/// A fraction as a percentage, with enough digits to tell tiny sparsities (one head's worth of a
/// model) from zero: `41.23%`, `0.0012%`, `0%`.
pub(crate) fn percent(f: f64) -> String {
    let p = 100.0 * f;
    if p == 0.0 {
        "0%".into()
    } else if p.abs() >= 0.1 {
        format!("{p:.2}%")
    } else if p.abs() >= 0.0001 {
        format!("{p:.4}%")
    } else {
        format!("{p:.2e}%")
    }
}

/// A statistic's `mean ± std`, or `–` when there is none.
pub(crate) fn stat(s: Option<Stat>, decimals: usize) -> String {
    s.map_or_else(|| "–".into(), |s| s.format(decimals))
}

/// A statistic's mean as a percentage, or `–`.
pub(crate) fn stat_percent(s: Option<Stat>) -> String {
    s.map_or_else(|| "–".into(), |s| percent(s.mean))
}

/// A statistic's mean with `decimals` decimals, or `–`.
pub(crate) fn mean(s: Option<Stat>, decimals: usize) -> String {
    s.map_or_else(|| "–".into(), |s| format!("{:.*}", decimals, s.mean))
}

/// A signed difference: `+0.0123`, `−0.0040` (a true minus sign).
pub(crate) fn signed(d: f64, decimals: usize) -> String {
    let text = format!("{:+.*}", decimals, d);
    text.replacen('-', "−", 1)
}

/// Text safe in a Markdown table cell: one line, `|` escaped.
pub(crate) fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(12_067_202), "12,067,202");
        assert_eq!(thousands(200), "200");
        assert_eq!(amount(0.0), "0");
        assert_eq!(amount(0.5), "0.5");
        assert_eq!(amount(0.95), "0.95");
        assert_eq!(percent(0.412345), "41.23%");
        assert_eq!(percent(1536.0 / 124_441_344.0), "0.0012%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(signed(-0.004, 4), "−0.0040");
        assert_eq!(signed(0.0123, 4), "+0.0123");
        assert_eq!(cell("a | b\nc"), "a \\| b c");
    }
}
