//! `report.html`: the report as one self-contained page — no network, no CDN: CSS, scripts,
//! data and plots inline, so it opens from `file://` and can be mailed around. The results table
//! sorts by any column (click its header) and filters by model, task and arm; the metric charts
//! are drawn in the page from the cells' numbers, with each point's value on hover; the findings
//! are `REPORT.md`'s, and the other plots are the report's SVG files, inlined.
//!
//! The page reads its view from the URL's fragment too (`#sort=mean:desc&arm=dense`), so a view
//! can be linked, and a browser test can set one without clicking.

use std::fmt::Write;
use std::path::Path;

use crate::aggregate::{Cell, Stat, dense};
use crate::error::{Error, Result};
use crate::markdown::Parts;
use crate::plots::PlotKind;

/// The page.
pub(crate) fn report_html(parts: &Parts<'_>, out: &Path) -> Result<String> {
    let mut html = String::new();
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    html.push_str("<title>prunelab report</title>\n<style>\n");
    html.push_str(CSS);
    html.push_str("</style>\n</head>\n<body>\n");
    let runs = &parts.inputs.runs;
    let finished = runs.iter().filter(|r| r.finished()).count();
    let _ = writeln!(
        html,
        "<h1>prunelab report</h1>\n<p class=\"summary\">{} runs ({finished} finished), {} cells, from <code>{}</code>. \
         The same content as <code>REPORT.md</code>; this page sorts, filters and shows values on hover.</p>",
        runs.len(),
        parts.cells.len(),
        escape(parts.input)
    );
    results_table(&mut html, parts.cells);
    charts(&mut html, parts.cells)?;
    html.push_str("<h2 id=\"findings\">Findings</h2>\n");
    html.push_str(&markdown_to_html(&parts.findings.markdown()));
    other_plots(&mut html, parts, out)?;
    html.push_str("<script>\n");
    html.push_str(SCRIPT);
    html.push_str("</script>\n</body>\n</html>\n");
    Ok(html)
}

/// One column of the results table: its key (for sorting and the fragment), header, and the
/// cell's text and numeric value.
struct Column {
    key: &'static str,
    header: &'static str,
    numeric: bool,
}

const COLUMNS: [Column; 11] = [
    Column { key: "model", header: "model", numeric: false },
    Column { key: "task", header: "task", numeric: false },
    Column { key: "arm", header: "arm", numeric: false },
    Column { key: "amount", header: "amount", numeric: true },
    Column { key: "metric", header: "metric", numeric: false },
    Column { key: "mean", header: "mean", numeric: true },
    Column { key: "std", header: "std", numeric: true },
    Column { key: "seeds", header: "seeds", numeric: true },
    Column { key: "zeros", header: "zero, all params", numeric: true },
    Column { key: "train", header: "train samples/s", numeric: true },
    Column { key: "infer", header: "inference/s", numeric: true },
];

fn results_table(html: &mut String, cells: &[Cell]) {
    html.push_str("<h2 id=\"results\">Results</h2>\n<div class=\"controls\">\n");
    for (key, label) in [("model", "model"), ("task", "task"), ("arm", "arm")] {
        let _ = writeln!(
            html,
            "<label>{label} <select data-filter=\"{key}\"><option value=\"\">all</option></select></label>"
        );
    }
    html.push_str("<span id=\"shown\"></span>\n</div>\n<table id=\"cells\">\n<thead><tr>");
    for c in &COLUMNS {
        let _ = write!(html, "<th data-key=\"{}\" data-numeric=\"{}\">{}</th>", c.key, c.numeric, c.header);
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for cell in cells {
        let values = row(cell);
        html.push_str("<tr");
        for (c, (_, value)) in COLUMNS.iter().zip(&values) {
            let _ = write!(html, " data-{}=\"{}\"", c.key, escape(value));
        }
        html.push('>');
        for (text, _) in &values {
            let _ = write!(html, "<td>{}</td>", escape(text));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n");
}

/// `(text, sort value)` of each column for one cell; missing numbers sort last (empty value).
fn row(cell: &Cell) -> Vec<(String, String)> {
    let num = |v: Option<f64>, text: String| (text, v.map_or_else(String::new, |v| format!("{v}")));
    let stat = |s: Option<Stat>, f: &dyn Fn(f64) -> String| {
        num(s.map(|s| s.mean), s.map_or_else(|| "–".into(), |s| f(s.mean)))
    };
    let collapsed = if cell.collapsed > 0 { format!(" ({} collapsed)", cell.collapsed) } else { String::new() };
    vec![
        (cell.model.clone(), cell.model.clone()),
        (cell.task.clone(), cell.task.clone()),
        (cell.arm.label(), cell.arm.label()),
        num(Some(cell.amount), format!("{}", cell.amount)),
        (cell.metric.clone(), cell.metric.clone()),
        num(cell.main.map(|s| s.mean), cell.main.map_or_else(|| "–".into(), |s| format!("{:.4}{collapsed}", s.mean))),
        num(
            cell.main.and_then(|s| s.std),
            cell.main.and_then(|s| s.std).map_or_else(|| "–".into(), |s| format!("{s:.4}")),
        ),
        num(Some(cell.runs as f64), cell.runs.to_string()),
        stat(cell.all_after, &|v| format!("{:.2}%", 100.0 * v)),
        stat(cell.samples_per_second, &|v| format!("{v:.1}")),
        stat(cell.throughput, &|v| format!("{v:.1}")),
    ]
}

/// The metric charts' data, one chart per model × task: `{title, metric, dense, arms: [{label,
/// points: [[amount, mean, std, n]]}]}`, drawn by the page's script.
fn charts(html: &mut String, cells: &[Cell]) -> Result<()> {
    let mut charts = Vec::new();
    let mut pairs: Vec<(&str, &str)> = cells.iter().map(|c| (c.model.as_str(), c.task.as_str())).collect();
    pairs.dedup();
    for (model, task) in pairs {
        let group: Vec<&Cell> = cells.iter().filter(|c| c.model == model && c.task == task).collect();
        let mut arms: Vec<serde_json::Value> = Vec::new();
        for cell in group.iter().filter(|c| !c.is_dense()) {
            let Some(main) = cell.main else { continue };
            let label = cell.arm.label();
            let point = serde_json::json!([cell.amount, main.mean, main.std.unwrap_or(0.0), main.n]);
            match arms.iter_mut().find(|a| a["label"] == label) {
                Some(arm) => arm["points"].as_array_mut().expect("points").push(point),
                None => arms.push(serde_json::json!({"label": label, "points": [point]})),
            }
        }
        let dense = dense(cells, model, task)
            .and_then(|c| c.main)
            .map(|s| serde_json::json!([s.mean, s.std.unwrap_or(0.0), s.n]));
        let metric = group.first().map_or("", |c| c.metric.as_str());
        charts.push(
            serde_json::json!({"title": format!("{model} on {task}"), "metric": metric, "dense": dense, "arms": arms}),
        );
    }
    html.push_str("<h2 id=\"charts\">Metric vs pruned fraction</h2>\n");
    html.push_str("<p>Mean over seeds, ± std as a band; the dashed line is dense. Hover a point for its value.</p>\n");
    html.push_str("<div id=\"charts-area\"></div>\n<script id=\"chart-data\" type=\"application/json\">");
    let json = serde_json::to_string(&charts)
        .map_err(|e| Error::Plot { path: "report.html".into(), message: e.to_string() })?;
    // `</` cannot end the script element early.
    html.push_str(&json.replace("</", "<\\/"));
    html.push_str("</script>\n");
    Ok(())
}

/// The report's other plots (speed, weights, layers), their SVG inlined.
fn other_plots(html: &mut String, parts: &Parts<'_>, out: &Path) -> Result<()> {
    let sections = [
        (PlotKind::Speed, "Speed vs pruned fraction"),
        (PlotKind::Weights, "Weights by layer"),
        (PlotKind::Layers, "Zero weights per layer"),
    ];
    for (kind, heading) in sections {
        let plots: Vec<_> = parts.plots.iter().filter(|p| p.kind == kind).collect();
        if plots.is_empty() {
            continue;
        }
        let _ = writeln!(html, "<h2>{heading}</h2>");
        for plot in plots {
            let path = out.join(&plot.svg);
            let svg = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
            let svg =
                svg.trim_start_matches(|c| c != '<').trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            let _ = writeln!(
                html,
                "<details><summary>{}</summary>\n<div class=\"plot\">{svg}</div></details>",
                escape(&plot.title)
            );
        }
    }
    Ok(())
}

/// The Markdown `REPORT.md`'s findings use, as HTML: headings, paragraphs, pipe tables, bullet
/// lists, `code` and **bold**.
pub(crate) fn markdown_to_html(md: &str) -> String {
    let mut html = String::new();
    let mut lines = md.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(level) = (1..=4).rev().find(|n| trimmed.starts_with(&format!("{} ", "#".repeat(*n)))) {
            let _ = writeln!(html, "<h{l}>{}</h{l}>", inline(trimmed[level + 1..].trim()), l = level.max(3));
        } else if trimmed.starts_with('|') {
            let mut rows = vec![trimmed.to_owned()];
            while let Some(next) = lines.peek().filter(|l| l.trim().starts_with('|')) {
                rows.push(next.trim().to_owned());
                lines.next();
            }
            html.push_str("<table class=\"md\">\n");
            for (i, row) in rows.iter().enumerate() {
                if i == 1 && row.chars().all(|c| "|-: ".contains(c)) {
                    continue;
                }
                let tag = if i == 0 { "th" } else { "td" };
                html.push_str("<tr>");
                for cell in row.trim_matches('|').split('|') {
                    let _ = write!(html, "<{tag}>{}</{tag}>", inline(cell.trim()));
                }
                html.push_str("</tr>\n");
            }
            html.push_str("</table>\n");
        } else if let Some(first) = trimmed.strip_prefix("- ") {
            html.push_str("<ul>\n");
            let mut item = first.to_owned();
            loop {
                match lines.peek().map(|l| l.trim()) {
                    Some(next) if next.starts_with("- ") => {
                        let _ = writeln!(html, "<li>{}</li>", inline(&item));
                        item = next[2..].to_owned();
                        lines.next();
                    }
                    Some(next) if !next.is_empty() && !next.starts_with('|') && !next.starts_with('#') => {
                        item.push(' ');
                        item.push_str(next);
                        lines.next();
                    }
                    _ => break,
                }
            }
            let _ = writeln!(html, "<li>{}</li>\n</ul>", inline(&item));
        } else {
            let mut paragraph = trimmed.to_owned();
            while let Some(next) = lines
                .peek()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('#') && !l.starts_with("- "))
            {
                paragraph.push(' ');
                paragraph.push_str(next);
                lines.next();
            }
            let _ = writeln!(html, "<p>{}</p>", inline(&paragraph));
        }
    }
    html
}

/// Inline Markdown: `code` and **bold**, the rest escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            for (j, piece) in escape(part).split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{piece}</strong>");
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    out
}

/// Text as HTML text or attribute value.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const CSS: &str = r#"body { font-family: system-ui, -apple-system, "DejaVu Sans", sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { margin-top: 1.5em; }
code { background: #f3f3f3; padding: 0 .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: left; }
#cells th { cursor: pointer; background: #f7f7f7; user-select: none; }
#cells th.asc::after { content: " ▲"; } #cells th.desc::after { content: " ▼"; }
#cells td:nth-child(n+4) { text-align: right; }
.controls { margin: .5em 0; display: flex; gap: 1em; flex-wrap: wrap; align-items: center; }
#shown { color: #666; }
.chart { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
.chart circle:hover { stroke: #000; stroke-width: 2; }
.plot svg { max-width: 100%; height: auto; }
details { margin: .3em 0; }
"#;

const SCRIPT: &str = r#"(function () {
  const table = document.getElementById('cells');
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const selects = Array.from(document.querySelectorAll('select[data-filter]'));
  const state = { sort: null, dir: 'asc', filters: {} };

  for (const select of selects) {
    const key = select.dataset.filter;
    const values = Array.from(new Set(rows.map(r => r.dataset[key]))).sort();
    for (const v of values) { const o = document.createElement('option'); o.value = v; o.textContent = v; select.appendChild(o); }
    select.addEventListener('change', () => { state.filters[key] = select.value; apply(); });
  }
  for (const th of table.tHead.rows[0].cells) {
    th.addEventListener('click', () => {
      const key = th.dataset.key;
      state.dir = state.sort === key && state.dir === 'asc' ? 'desc' : 'asc';
      state.sort = key;
      apply();
    });
  }

  function value(row, key, numeric) {
    const v = row.dataset[key];
    if (!numeric) return v;
    return v === '' ? NaN : parseFloat(v);
  }

  function apply() {
    let shown = 0;
    for (const row of rows) {
      const visible = Object.entries(state.filters).every(([k, v]) => !v || row.dataset[k] === v);
      row.style.display = visible ? '' : 'none';
      if (visible) shown++;
    }
    for (const th of table.tHead.rows[0].cells) th.classList.remove('asc', 'desc');
    if (state.sort) {
      const th = table.tHead.querySelector(`th[data-key="${state.sort}"]`);
      const numeric = th.dataset.numeric === 'true';
      th.classList.add(state.dir);
      const sign = state.dir === 'asc' ? 1 : -1;
      const sorted = rows.slice().sort((a, b) => {
        const x = value(a, state.sort, numeric), y = value(b, state.sort, numeric);
        if (numeric) {
          if (isNaN(x) && isNaN(y)) return 0;
          if (isNaN(x)) return 1;
          if (isNaN(y)) return -1;
          return sign * (x - y);
        }
        return sign * x.localeCompare(y);
      });
      for (const row of sorted) body.appendChild(row);
    }
    for (const select of selects) select.value = state.filters[select.dataset.filter] || '';
    document.getElementById('shown').textContent = `${shown} of ${rows.length} cells shown`;
  }

  // A view from the URL's fragment: #sort=mean:desc&arm=dense&task=cola
  for (const part of decodeURIComponent(location.hash.slice(1)).split('&')) {
    const [k, v] = part.split('=');
    if (!k || v === undefined) continue;
    if (k === 'sort') { const [key, dir] = v.split(':'); state.sort = key; state.dir = dir === 'desc' ? 'desc' : 'asc'; }
    else state.filters[k] = v;
  }
  apply();
  drawCharts();

  function drawCharts() {
    const data = JSON.parse(document.getElementById('chart-data').textContent);
    const area = document.getElementById('charts-area');
    const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
    const ns = 'http://www.w3.org/2000/svg';
    const W = 560, H = 340, L = 56, R = 16, T = 28, B = 44;
    for (const chart of data) {
      const values = [];
      for (const arm of chart.arms) for (const p of arm.points) values.push(p[1] - p[2], p[1] + p[2]);
      if (chart.dense) values.push(chart.dense[0] - chart.dense[1], chart.dense[0] + chart.dense[1]);
      if (!values.length) continue;
      let lo = Math.min(...values), hi = Math.min(1, Math.max(...values));
      const pad = Math.max((hi - lo) * 0.08, 0.01);
      lo -= pad; hi = Math.min(1, hi + pad);
      const x = a => L + a * (W - L - R), y = v => T + (hi - v) / (hi - lo) * (H - T - B);
      const svg = document.createElementNS(ns, 'svg');
      svg.setAttribute('width', W); svg.setAttribute('height', H); svg.setAttribute('class', 'chart');
      const el = (name, attrs, parent, text) => {
        const e = document.createElementNS(ns, name);
        for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
        if (text !== undefined) e.textContent = text;
        (parent || svg).appendChild(e);
        return e;
      };
      el('rect', { x: L, y: T, width: W - L - R, height: H - T - B, fill: 'none', stroke: '#ccc' });
      el('text', { x: W / 2, y: 18, 'text-anchor': 'middle', 'font-size': 13 }, null, chart.title);
      for (let i = 0; i <= 5; i++) {
        const a = i / 5, v = lo + (hi - lo) * i / 5;
        el('text', { x: x(a), y: H - B + 16, 'text-anchor': 'middle', 'font-size': 11 }, null, a.toFixed(1));
        el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11 }, null, v.toFixed(2));
      }
      el('text', { x: (L + W - R) / 2, y: H - 8, 'text-anchor': 'middle', 'font-size': 12 }, null, 'pruned fraction of the scope');
      el('text', { x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', 'font-size': 12, transform: `rotate(-90 14 ${(T + H - B) / 2})` }, null, `dev ${chart.metric}`);
      if (chart.dense) {
        const line = el('line', { x1: x(0), x2: x(1), y1: y(chart.dense[0]), y2: y(chart.dense[0]), stroke: '#000', 'stroke-dasharray': '6 4' });
        el('title', {}, line, `dense: ${chart.dense[0].toFixed(4)} ± ${chart.dense[1].toFixed(4)} (${chart.dense[2]} seeds)`);
      }
      chart.arms.forEach((arm, i) => {
        const color = colors[i % colors.length];
        const pts = arm.points.slice().sort((a, b) => a[0] - b[0]);
        if (pts.length > 1) {
          const band = pts.map(p => `${x(p[0])},${y(p[1] + p[2])}`).concat(pts.slice().reverse().map(p => `${x(p[0])},${y(p[1] - p[2])}`));
          el('polygon', { points: band.join(' '), fill: color, 'fill-opacity': 0.15, stroke: 'none' });
          el('polyline', { points: pts.map(p => `${x(p[0])},${y(p[1])}`).join(' '), fill: 'none', stroke: color, 'stroke-width': 2 });
        }
        for (const p of pts) {
          const c = el('circle', { cx: x(p[0]), cy: y(p[1]), r: 4, fill: color, 'data-arm': arm.label, 'data-amount': p[0] });
          el('title', {}, c, `${arm.label} at ${p[0]}: ${p[1].toFixed(4)} ± ${p[2].toFixed(4)} (${p[3]} seeds)`);
        }
        el('text', { x: L + 8, y: T + 16 + 15 * i, 'font-size': 11, fill: color }, null, arm.label);
      });
      area.appendChild(svg);
    }
  }
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_subset_becomes_html() {
        let md = "### How far?\n\nSome `code` and **bold**\ntext.\n\n| a | b |\n|---|---|\n| 1 | <2> |\n\n- one\n- two\n  more\n";
        let html = markdown_to_html(md);
        assert!(html.contains("<h3>How far?</h3>"), "{html}");
        assert!(html.contains("<p>Some <code>code</code> and <strong>bold</strong> text.</p>"), "{html}");
        assert!(html.contains("<tr><th>a</th><th>b</th></tr>") && html.contains("<td>&lt;2&gt;</td>"), "{html}");
        assert!(html.contains("<li>one</li>") && html.contains("<li>two more</li>"), "{html}");
    }
}
