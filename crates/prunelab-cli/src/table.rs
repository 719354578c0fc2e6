//! Number formatting for the tables the CLI prints.

/// `67349` -> `67,349`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `22713986` -> `22.7M`, `45_400_000` bytes -> `45.4M`.
pub fn compact(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(872), "872");
        assert_eq!(thousands(1_043), "1,043");
        assert_eq!(thousands(67_349), "67,349");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn compact_units() {
        assert_eq!(compact(999), "999");
        assert_eq!(compact(22_713_986), "22.7M");
        assert_eq!(compact(124_439_808), "124.4M");
        assert_eq!(compact(1_557_611_200), "1.56G");
    }
}
