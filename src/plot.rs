//! PNG charts for the lessons and for training curves: plotters draws into an RGB buffer, `png` encodes
//! it, and the file is written atomically.
//!
//! Text needs a TrueType font. nabla looks for DejaVu Sans (Debian's `fonts-dejavu-core`) and the
//! usual system fonts, or takes the file named by `NABLA_FONT`; without one a chart is an error that
//! says so, never a panic.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::checkpoint::write_atomically;
use crate::data::folder::encode_png;
use crate::error::{Error, Result};
use crate::train::EpochStats;

/// Names a font file to use for chart text, overriding the built-in search.
pub const FONT_ENV: &str = "NABLA_FONT";

const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A line through the points.
    Line,
    /// A line with a dot at every point.
    LineWithDots,
    /// A thin grey line without a legend entry (contours, guides).
    Guide,
    /// A dot at every point, no line (a scatter plot).
    Dots,
}

/// One named sequence of points.
#[derive(Clone, Debug)]
pub struct Series {
    /// The legend entry (a legend is drawn when a chart has two or more series that are not guides).
    pub label: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// How to draw them.
    pub style: Style,
}

impl Series {
    /// A line series.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
            style: Style::Line,
        }
    }
}

/// One panel: a title, axis names and its series.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// Drawn above the panel.
    pub title: String,
    /// The x axis's description.
    pub x_label: String,
    /// The y axis's description.
    pub y_label: String,
    /// The series, drawn in order with distinct colours.
    pub series: Vec<Series>,
    /// The y range to show; by default the data's range with a margin.
    pub y_range: Option<(f64, f64)>,
}

/// Registers a system font for chart text once per process; false if none could be found.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let from_env = std::env::var(FONT_ENV).ok();
        from_env
            .iter()
            .map(String::as_str)
            .chain(FONT_PATHS)
            .filter_map(|path| std::fs::read(path).ok())
            .any(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
    })
}

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("drawing a chart failed: {e}"))
}

/// The range of `values` with 5% added at each end (a unit range around a constant).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    (lo - pad, hi + pad)
}

/// Checks that charts can be drawn (a font for their text was found), so that a long run can fail
/// before it starts rather than at its first chart.
pub fn check_font() -> Result<()> {
    if font_ready() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "no TrueType font found for chart text: install DejaVu Sans (Debian/Ubuntu: apt-get \
             install fonts-dejavu-core) or set {FONT_ENV} to a .ttf file"
        )))
    }
}

/// Draws `charts` in a grid `columns` wide, each panel `panel` pixels, and writes the PNG to `path`.
pub fn write_png(path: &Path, charts: &[Chart], columns: usize, panel: (u32, u32)) -> Result<()> {
    check_font()?;
    let columns = columns.clamp(1, charts.len().max(1));
    let rows = charts.len().div_ceil(columns).max(1);
    let size = (panel.0 * columns as u32, panel.1 * rows as u32);
    write_canvas(path, size, |root| {
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(charts) {
            draw(area, chart)?;
        }
        Ok(())
    })
}

/// A white RGB canvas of `size` that `paint` draws on, written to `path` as a PNG.
fn write_canvas(
    path: &Path,
    size: (u32, u32),
    paint: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    let (width, height) = size;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        paint(&root)?;
        root.present().map_err(plot_error)?;
    }
    write_atomically(path, &encode_png(width, height, png::ColorType::Rgb, &rgb)?)
}

/// Draws a confusion matrix (`confusion[t][p]`: samples of true class `t` predicted as `p`) as a grid
/// of counts, each cell shaded by its share of its true class (white 0, dark blue all), and writes the
/// PNG to `path`. The diagonal holds the right answers.
pub fn write_confusion(path: &Path, confusion: &[Vec<usize>], names: &[String]) -> Result<()> {
    check_font()?;
    let n = names.len();
    if n == 0 || confusion.len() != n || confusion.iter().any(|r| r.len() != n) {
        return Err(Error::Invalid(format!(
            "a confusion matrix of {n} classes needs {n}×{n} counts"
        )));
    }
    let cell = (480 / n as u32).clamp(24, 64);
    let side = cell * n as u32;
    let size = (side + 150, side + 130);
    write_canvas(path, size, |root| {
        let text = |s: &str, at: (i32, i32), anchor| -> Result<()> {
            let style = TextStyle::from(("sans-serif", 13).into_font())
                .color(&BLACK)
                .pos(anchor);
            root.draw_text(s, &style, at).map_err(plot_error)
        };
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let (x0, y0) = (120i32, 70i32);
        text(
            "Confusion matrix (rows: true class, columns: predicted)",
            (10, 10),
            Pos::new(HPos::Left, VPos::Top),
        )?;
        for (t, row) in confusion.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            for (p, &count) in row.iter().enumerate() {
                let share = count as f64 / total;
                let shade = |full: f64| (255.0 - share * (255.0 - full)).round() as u8;
                let fill = RGBColor(shade(20.0), shade(60.0), shade(140.0));
                let (cx, cy) = (x0 + (p as u32 * cell) as i32, y0 + (t as u32 * cell) as i32);
                root.draw(&Rectangle::new(
                    [(cx, cy), (cx + cell as i32, cy + cell as i32)],
                    fill.filled(),
                ))
                .map_err(plot_error)?;
                root.draw(&Rectangle::new(
                    [(cx, cy), (cx + cell as i32, cy + cell as i32)],
                    RGBColor(200, 200, 200),
                ))
                .map_err(plot_error)?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let style = TextStyle::from(("sans-serif", 12).into_font())
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                root.draw_text(
                    &count.to_string(),
                    &style,
                    (cx + cell as i32 / 2, cy + cell as i32 / 2),
                )
                .map_err(plot_error)?;
            }
            let label: String = names[t].chars().take(14).collect();
            text(
                &label,
                (x0 - 6, y0 + (t as u32 * cell + cell / 2) as i32),
                Pos::new(HPos::Right, VPos::Center),
            )?;
        }
        for (p, name) in names.iter().enumerate() {
            let label: String = name.chars().take(6).collect();
            text(
                &label,
                (x0 + (p as u32 * cell + cell / 2) as i32, y0 - 6),
                Pos::new(HPos::Center, VPos::Bottom),
            )?;
        }
        text(
            "predicted",
            (x0 + side as i32 / 2, y0 + side as i32 + 10),
            Pos::new(HPos::Center, VPos::Top),
        )?;
        Ok(())
    })
}

/// A regression's predictions against the truth, one dot per sample, with the line `predicted = true`
/// as a guide: the further a dot from it, the larger that sample's error.
pub fn regression_errors(predicted: &[f32], truth: &[f32], target: &str) -> Chart {
    let points: Vec<(f64, f64)> = truth
        .iter()
        .zip(predicted)
        .map(|(&t, &p)| (f64::from(t), f64::from(p)))
        .collect();
    let (lo, hi) = padded_range(points.iter().flat_map(|&(t, p)| [t, p]));
    Chart {
        title: format!("Predicted against true {target}"),
        x_label: format!("true {target}"),
        y_label: format!("predicted {target}"),
        series: vec![
            Series {
                style: Style::Guide,
                ..Series::line("predicted = true", vec![(lo, lo), (hi, hi)])
            },
            Series {
                style: Style::Dots,
                ..Series::line("samples", points)
            },
        ],
        y_range: Some((lo, hi)),
    }
}

fn draw(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    chart: &Chart,
) -> Result<()> {
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = padded_range(points().map(|p| p.0));
    let (y0, y1) = chart
        .y_range
        .unwrap_or_else(|| padded_range(points().map(|p| p.1)));
    let mut c = ChartBuilder::on(area)
        .caption(&chart.title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(plot_error)?;
    c.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style(("sans-serif", 12))
        .x_labels(6)
        .y_labels(6)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_error)?;
    let mut colors = (0..).map(|i| Palette99::pick(i).to_rgba());
    let mut legend = 0;
    for s in &chart.series {
        let visible = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite());
        if s.style == Style::Guide {
            let grey = RGBColor(190, 190, 190).stroke_width(1);
            c.draw_series(LineSeries::new(visible, grey))
                .map_err(plot_error)?;
            continue;
        }
        let color = colors.next().expect("an endless palette");
        legend += 1;
        if s.style == Style::Dots {
            c.draw_series(visible.map(|p| Circle::new(p, 3, color.filled())))
                .map_err(plot_error)?
                .label(s.label.as_str())
                .legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
            continue;
        }
        c.draw_series(LineSeries::new(visible.clone(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(s.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        if s.style == Style::LineWithDots {
            c.draw_series(visible.map(|p| Circle::new(p, 3, color.filled())))
                .map_err(plot_error)?;
        }
    }
    if legend > 1 {
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
    }
    Ok(())
}

/// The training curves of a run, per epoch: the loss, and the training and evaluation accuracy (for a
/// regression, which has none, the evaluation loss beside the training loss); `eval_name` names the
/// evaluation split (`test`, or `validation`).
pub fn training_curves(history: &[EpochStats], eval_name: &str) -> Vec<Chart> {
    let epoch = |s: &EpochStats| s.epoch as f64;
    let loss = history
        .iter()
        .map(|s| (epoch(s), f64::from(s.train_loss)))
        .collect();
    let dotted = |label: &str, points| Series {
        style: Style::LineWithDots,
        ..Series::line(label, points)
    };
    let mut losses = vec![dotted("train", loss)];
    let classifies = history.iter().any(|s| s.test_accuracy.is_some());
    if !classifies {
        // A regression has no accuracy: its evaluation loss goes beside the training loss.
        let eval_loss = history
            .iter()
            .filter_map(|s| Some((epoch(s), f64::from(s.test_loss?))))
            .collect();
        losses.push(dotted(eval_name, eval_loss));
    }
    let mut charts = vec![Chart {
        title: "Loss".into(),
        x_label: "epoch".into(),
        y_label: "mean loss".into(),
        series: losses,
        y_range: None,
    }];
    if classifies {
        let percent = |v: f32| f64::from(v) * 100.0;
        let train_accuracy = history
            .iter()
            .map(|s| (epoch(s), percent(s.train_accuracy)))
            .collect();
        let test_accuracy = history
            .iter()
            .filter_map(|s| Some((epoch(s), percent(s.test_accuracy?))))
            .collect();
        charts.push(Chart {
            title: "Accuracy".into(),
            x_label: "epoch".into(),
            y_label: "%".into(),
            series: vec![
                dotted("train", train_accuracy),
                dotted(eval_name, test_accuracy),
            ],
            y_range: None,
        });
    }
    charts
}

/// Draws grids of small grayscale images (filters, digits) and writes the PNG to `path`: each grid in
/// `grids` is `columns` tiles wide, the grids one under the other with a gap; each tile is
/// `tile = (width, height)` values, row-major, scaled so that its own minimum is black and its maximum
/// white, and every value drawn as a `zoom × zoom` square.
pub fn write_tiles(
    path: &Path,
    grids: &[Vec<Vec<f32>>],
    tile: (usize, usize),
    columns: usize,
    zoom: usize,
) -> Result<()> {
    let (tw, th) = tile;
    if tw == 0 || th == 0 || zoom == 0 || columns == 0 {
        return Err(Error::Invalid(
            "tiles need a size, a zoom and columns".into(),
        ));
    }
    let gap = zoom;
    let cell = (tw * zoom + gap, th * zoom + gap);
    let rows_of = |g: &Vec<Vec<f32>>| g.len().div_ceil(columns);
    let width = columns * cell.0 + gap;
    let height = grids
        .iter()
        .map(|g| rows_of(g) * cell.1 + 2 * gap)
        .sum::<usize>()
        + gap;
    let mut gray = vec![255u8; width * height];
    let mut top = gap;
    for grid in grids {
        for (k, values) in grid.iter().enumerate() {
            if values.len() != tw * th {
                return Err(Error::Invalid(format!(
                    "a tile of {} values is not {tw}×{th}",
                    values.len()
                )));
            }
            let (lo, hi) = values
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            let span = if hi > lo { hi - lo } else { 1.0 };
            let (x0, y0) = (gap + (k % columns) * cell.0, top + (k / columns) * cell.1);
            for (i, &v) in values.iter().enumerate() {
                let shade = (((v - lo) / span) * 255.0).round().clamp(0.0, 255.0) as u8;
                let (px, py) = (x0 + (i % tw) * zoom, y0 + (i / tw) * zoom);
                for dy in 0..zoom {
                    let row = (py + dy) * width;
                    gray[row + px..row + px + zoom].fill(shade);
                }
            }
        }
        top += rows_of(grid) * cell.1 + 2 * gap;
    }
    let size = (width as u32, height as u32);
    write_atomically(
        path,
        &encode_png(size.0, size.1, png::ColorType::Grayscale, &gray)?,
    )
}

/// Draws pictures (`C×H×W` bytes each, channel-first; one channel grey, three RGB) in a grid of
/// `columns`, each twice its size with its caption under it, and writes the PNG to `path`.
pub fn write_pictures(
    path: &Path,
    pictures: &[Vec<u8>],
    shape: (usize, usize, usize),
    captions: &[String],
    columns: usize,
) -> Result<()> {
    check_font()?;
    let (c, h, w) = shape;
    if !(c == 1 || c == 3) || pictures.iter().any(|p| p.len() != c * h * w) || columns == 0 {
        return Err(Error::Invalid(format!(
            "pictures must be {c}×{h}×{w} bytes of 1 or 3 channels, in at least one column"
        )));
    }
    let zoom = 2;
    let cell = ((w * zoom).max(180) as i32 + 10, (h * zoom) as i32 + 30);
    let rows = pictures.len().div_ceil(columns).max(1);
    let size = (
        (cell.0 * columns as i32 + 10) as u32,
        (cell.1 * rows as i32 + 10) as u32,
    );
    write_canvas(path, size, |root| {
        for (k, picture) in pictures.iter().enumerate() {
            let (x0, y0) = (
                10 + (k % columns) as i32 * cell.0,
                10 + (k / columns) as i32 * cell.1,
            );
            let plane = h * w;
            for i in 0..plane {
                let v = |ch: usize| picture[ch.min(c - 1) * plane + i];
                let colour = RGBColor(v(0), v(1), v(2));
                let (px, py) = (x0 + ((i % w) * zoom) as i32, y0 + ((i / w) * zoom) as i32);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    root.draw_pixel((px + dx, py + dy), &colour)
                        .map_err(plot_error)?;
                }
            }
            if let Some(caption) = captions.get(k) {
                let style = TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK);
                root.draw_text(caption, &style, (x0, y0 + (h * zoom) as i32 + 6))
                    .map_err(plot_error)?;
            }
        }
        Ok(())
    })
}
