//! A small line-chart engine on plotters: a figure is a row of panels, each with lines (points
//! with an optional ± band) and horizontal reference lines, drawn once for PNG and once for SVG.
//! Text in PNGs uses DejaVu Sans embedded in the crate, so no system font is needed.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::write::write_atomic;

/// DejaVu Sans 2.37 (licence: `assets/LICENSE-DejaVu.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// The family every text uses; the embedded font is registered under it.
const FONT: &str = "sans-serif";
const PANEL_WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
/// The height of a panel's plotting area and of a legend row, in pixels (about).
const PLOT_HEIGHT: f64 = 360.0;
const LEGEND_ROW: f64 = 17.0;
/// A legend taller than this share of the plot goes beside the panel instead of above the data.
const LEGEND_INSIDE_MAX: f64 = 0.35;
/// Tableau 10.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// What the x axis shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum XAxis {
    /// A pruned fraction, 0 to 1.
    Amount,
    /// The remaining fraction (1 − amount) on a log scale: x is log10(1 − amount), ticks read
    /// as percentages (100 %, 10 %, 1 %), so 50, 90, 95 and 99 % pruned spread apart.
    RemainingLog,
    /// Layer indices; x = −1 is the parameters outside layers, labelled "other".
    Layer,
}

/// One point; `std` draws a band of ± std around the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
    pub std: Option<f64>,
}

/// A line through points (sorted by x by the caller).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub label: String,
    pub points: Vec<Point>,
    pub dashed: bool,
    /// Palette index (default: the line's position).
    pub color: Option<usize>,
}

/// A horizontal line across the panel, with an optional ± std band.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reference {
    pub label: String,
    pub y: f64,
    pub std: Option<f64>,
}

/// One chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x: XAxis,
    pub lines: Vec<Line>,
    pub references: Vec<Reference>,
    /// Stretch the y axis down to 0 (speeds, shares).
    pub include_zero: bool,
    /// The axis ends here at most (accuracy and MCC: 1); the legend then goes beside the
    /// panel, since no headroom above the data can be made for it.
    pub y_max: Option<f64>,
}

impl Panel {
    /// Entries in the legend: reference lines, then lines.
    fn legend_entries(&self) -> usize {
        self.lines.len() + self.references.len()
    }

    /// The legend's height as a share of the plotting area's.
    fn legend_share(&self) -> f64 {
        (self.legend_entries() as f64 * LEGEND_ROW + 20.0) / PLOT_HEIGHT
    }

    /// The width of a legend drawn beside the panel (0 when it fits inside): about 7 px per
    /// character of the longest label, plus the key and margins.
    fn legend_width(&self) -> u32 {
        if self.legend_share() <= LEGEND_INSIDE_MAX && self.y_max.is_none() {
            return 0;
        }
        let labels = self.lines.iter().map(|l| &l.label).chain(self.references.iter().map(|r| &r.label));
        let longest = labels.map(|l| l.chars().count()).max().unwrap_or(0) as u32;
        (48 + 7 * longest).clamp(120, 320)
    }

    fn width(&self) -> u32 {
        PANEL_WIDTH + self.legend_width()
    }
}

/// A titled row of panels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
}

/// Draw `figure` to `<dir>/<stem>.png` and `<dir>/<stem>.svg`; returns both paths.
pub(crate) fn render(figure: &Figure, dir: &Path, stem: &str) -> Result<[PathBuf; 2]> {
    register_font();
    let size = (figure.panels.iter().map(Panel::width).sum::<u32>().max(PANEL_WIDTH), HEIGHT);
    let png_path = dir.join(format!("{stem}.png"));
    let mut rgb = vec![255u8; (size.0 * size.1 * 3) as usize];
    draw(BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area(), figure)
        .map_err(|message| Error::Plot { path: png_path.clone(), message })?;
    let png = encode_png(&rgb, size).map_err(|source| Error::Png { path: png_path.clone(), source })?;
    write_atomic(&png_path, &png)?;

    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, size).into_drawing_area(), figure)
        .map_err(|message| Error::Plot { path: svg_path.clone(), message })?;
    write_atomic(&svg_path, svg.as_bytes())?;
    tracing::debug!(png = %png_path.display(), svg = %svg_path.display(), "plotted");
    Ok([png_path, svg_path])
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            tracing::warn!("the embedded font did not load; PNG plots will have no text");
        }
    });
}

fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// plotters' errors are generic over the backend; their text is what is kept.
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, figure: &Figure) -> Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(text)?;
    // Long titles (model ids) shrink to fit the figure's width: about 0.55 em per character.
    let width = f64::from(root.dim_in_pixel().0);
    let title_size = (20.0f64).min((width - 24.0) / (0.55 * figure.title.chars().count().max(1) as f64)).max(9.0);
    let body = root.titled(&figure.title, (FONT, title_size)).map_err(text)?;
    // Panels side by side, each as wide as its chart and legend.
    let mut breaks: Vec<i32> = Vec::new();
    let mut right = 0;
    for panel in figure.panels.iter().take(figure.panels.len().saturating_sub(1)) {
        right += panel.width() as i32;
        breaks.push(right);
    }
    for (area, panel) in body.split_by_breakpoints(breaks, [] as [i32; 0]).iter().zip(&figure.panels) {
        draw_panel(area, panel).map_err(text)?;
    }
    root.present().map_err(text)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (x0, x1) = x_range(panel);
    let (y0, y1) = y_range(panel);
    let legend_width = panel.legend_width();
    let (area, legend_area) = area.split_horizontally(area.dim_in_pixel().0 - legend_width);
    let mut chart = ChartBuilder::on(&area)
        .caption(&panel.title, (FONT, 15))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let layer_label = |x: &f64| layer_label(*x);
    let remaining_label = |x: &f64| remaining_label(*x);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT);
    match panel.x {
        XAxis::Layer => {
            mesh.x_labels(((x1 - x0).round() as usize + 1).min(40)).x_label_formatter(&layer_label);
        }
        XAxis::RemainingLog => {
            mesh.x_labels(((x1 - x0) * 2.0).round() as usize + 1).x_label_formatter(&remaining_label);
        }
        XAxis::Amount => {}
    }
    mesh.draw()?;

    for reference in &panel.references {
        let color = BLACK;
        if let Some(std) = reference.std.filter(|s| *s > 0.0) {
            let (lo, hi) = (reference.y - std, reference.y + std);
            let band = vec![(x0, lo), (x1, lo), (x1, hi), (x0, hi)];
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.08).filled())))?;
        }
        let style = color.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(vec![(x0, reference.y), (x1, reference.y)], 10, 6, style))?
            .label(reference.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    for (i, line) in panel.lines.iter().enumerate() {
        let color = PALETTE[line.color.unwrap_or(i) % PALETTE.len()];
        let band: Vec<&Point> = line.points.iter().filter(|p| p.std.is_some()).collect();
        if band.len() >= 2 {
            let upper = band.iter().map(|p| (p.x, p.y + p.std.unwrap_or(0.0)));
            let lower = band.iter().rev().map(|p| (p.x, p.y - p.std.unwrap_or(0.0)));
            let outline: Vec<(f64, f64)> = upper.chain(lower).collect();
            chart.draw_series(std::iter::once(Polygon::new(outline, color.mix(0.18).filled())))?;
        }
        let points: Vec<(f64, f64)> = line.points.iter().map(|p| (p.x, p.y)).collect();
        // "other" (x = −1) is no neighbour of layer 0: it gets a marker, not a segment.
        let path: Vec<(f64, f64)> = points.iter().copied().filter(|p| panel.x != XAxis::Layer || p.0 >= 0.0).collect();
        let style = color.stroke_width(2);
        let series = if line.dashed {
            chart.draw_series(DashedLineSeries::new(path, 7, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(path, style))?
        };
        let dashed = line.dashed;
        series.label(line.label.as_str()).legend(move |(x, y)| {
            let end = if dashed { x + 9 } else { x + 20 };
            PathElement::new(vec![(x, y), (end, y)], style)
        });
        let marker = if line.dashed { 2 } else { 3 };
        chart.draw_series(points.iter().map(|&p| Circle::new(p, marker, color.filled())))?;
    }
    if legend_width > 0 {
        draw_legend_beside(&legend_area, panel)?;
    } else if panel.legend_entries() > 0 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 12))
            .draw()?;
    }
    Ok(())
}

/// The legend in its own area right of the chart, entries in plotters' order (reference lines,
/// then lines), each with its key drawn as in the chart.
fn draw_legend_beside<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let row = LEGEND_ROW as i32;
    // Level with the top of the plotting area (caption and margin above it).
    let (x, top) = (4, 44);
    let height = panel.legend_entries() as i32 * row + 10;
    let width = area.dim_in_pixel().0 as i32 - 12;
    area.draw(&Rectangle::new([(x, top), (x + width, top + height)], WHITE.mix(0.85).filled()))?;
    area.draw(&Rectangle::new([(x, top), (x + width, top + height)], BLACK.mix(0.3)))?;
    let mut y = top + 5 + row / 2;
    let font = (FONT, 12).into_font();
    for reference in &panel.references {
        area.draw(&PathElement::new(vec![(x + 8, y), (x + 28, y)], BLACK.stroke_width(2)))?;
        area.draw(&Text::new(reference.label.clone(), (x + 36, y - 6), font.clone()))?;
        y += row;
    }
    for (i, line) in panel.lines.iter().enumerate() {
        let style = PALETTE[line.color.unwrap_or(i) % PALETTE.len()].stroke_width(2);
        let end = if line.dashed { x + 17 } else { x + 28 };
        area.draw(&PathElement::new(vec![(x + 8, y), (end, y)], style))?;
        area.draw(&Text::new(line.label.clone(), (x + 36, y - 6), font.clone()))?;
        y += row;
    }
    Ok(())
}

/// Layer ticks: integers, −1 as "other", nothing between.
fn layer_label(x: f64) -> String {
    let rounded = x.round();
    if (x - rounded).abs() > 1e-6 || rounded < -1.0 {
        String::new()
    } else if rounded == -1.0 {
        "other".into()
    } else {
        format!("{rounded:.0}")
    }
}

fn x_range(panel: &Panel) -> (f64, f64) {
    match panel.x {
        XAxis::Amount => (-0.02, 1.02),
        XAxis::RemainingLog => {
            let lowest = panel.lines.iter().flat_map(|l| l.points.iter().map(|p| p.x)).fold(0.0, f64::min);
            (lowest.min(-1.0) - 0.15, 0.1)
        }
        XAxis::Layer => {
            let xs = panel.lines.iter().flat_map(|l| l.points.iter().map(|p| p.x));
            let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
            if lo.is_finite() { (lo - 0.5, hi + 0.5) } else { (-1.5, 0.5) }
        }
    }
}

fn y_range(panel: &Panel) -> (f64, f64) {
    let points = panel.lines.iter().flat_map(|l| l.points.iter().map(|p| (p.y, p.std)));
    let references = panel.references.iter().map(|r| (r.y, r.std));
    let (mut lo, mut hi) = points.chain(references).filter(|(y, _)| y.is_finite()).fold(
        (f64::INFINITY, f64::NEG_INFINITY),
        |(lo, hi), (y, std)| {
            let s = std.unwrap_or(0.0);
            (lo.min(y - s), hi.max(y + s))
        },
    );
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if panel.include_zero {
        lo = lo.min(0.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.01);
    let (lo, hi) = (if panel.include_zero && lo >= 0.0 { 0.0 } else { lo - pad }, hi + pad);
    let hi = panel.y_max.map_or(hi, |max| hi.min(max));
    // Headroom for a legend inside the panel (upper right), so it never hides data: its share of
    // the plot's height, from its number of entries. A taller legend goes beside the panel.
    if panel.legend_width() > 0 {
        return (lo, hi);
    }
    let share = panel.legend_share();
    (lo, (hi - share * lo) / (1.0 - share))
}

/// Ticks of [`XAxis::RemainingLog`]: decades as percentages, nothing between them.
fn remaining_label(x: f64) -> String {
    if (x - x.round()).abs() > 1e-6 {
        return String::new();
    }
    let percent = 100.0 * 10f64.powf(x.round());
    if percent >= 1.0 { format!("{percent:.0}%") } else { format!("{percent}%") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(lines: usize) -> Panel {
        let line = |i: usize| Line {
            label: format!("amount 0.{i} after fine-tuning"),
            points: vec![Point { x: 0.0, y: 0.2, std: None }, Point { x: 5.0, y: 1.0, std: None }],
            dashed: i % 2 == 1,
            color: None,
        };
        Panel {
            title: "t".into(),
            x_label: "layer".into(),
            y_label: "zero share".into(),
            x: XAxis::Layer,
            lines: (0..lines).map(line).collect(),
            references: Vec::new(),
            include_zero: true,
            y_max: None,
        }
    }

    #[test]
    fn a_tall_legend_goes_beside_the_panel_and_leaves_the_y_axis_to_the_data() {
        // Five entries fit above the data: the y axis gets headroom, the panel keeps its width.
        let few = panel(5);
        assert_eq!(few.legend_width(), 0);
        assert!(y_range(&few).1 > 1.3, "{:?}", y_range(&few));
        // Ten (five amounts before and after) would squash shares of at most 1 under a y axis
        // reaching ~2.2; they go beside it, and the axis ends just above the data.
        let many = panel(10);
        assert!(many.legend_width() >= 7 * 29, "room for the longest label: {}", many.legend_width());
        let (lo, hi) = y_range(&many);
        assert_eq!(lo, 0.0);
        assert!(hi > 1.0 && hi < 1.1, "{hi}");
        // The figure widens by the legend, and both panels render.
        let dir = std::env::temp_dir().join(format!("prunelab-plot-legend-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let figure = Figure { title: "legend".into(), panels: vec![many.clone(), few] };
        let [png, svg] = render(&figure, &dir, "legend").unwrap();
        let bytes = std::fs::read(&png).unwrap();
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        assert_eq!(width, 2 * PANEL_WIDTH + many.legend_width());
        assert!(std::fs::read_to_string(&svg).unwrap().contains("amount 0.9 after fine-tuning"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_capped_axis_ends_at_its_cap_with_the_legend_beside() {
        let mut capped = panel(2);
        capped.lines[0].points[1].y = 0.99;
        capped.y_max = Some(1.0);
        assert_eq!(y_range(&capped).1, 1.0, "accuracy never reads above 1");
        assert!(capped.legend_width() > 0);
    }

    #[test]
    fn remaining_ticks_are_decades() {
        assert_eq!(remaining_label(0.0), "100%");
        assert_eq!(remaining_label(-1.0), "10%");
        assert_eq!(remaining_label(-2.0), "1%");
        assert_eq!(remaining_label(-1.5), "");
    }

    #[test]
    fn layer_ticks() {
        assert_eq!(layer_label(-1.0), "other");
        assert_eq!(layer_label(3.0), "3");
        assert_eq!(layer_label(2.5), "");
        assert_eq!(layer_label(-2.0), "");
    }
}
