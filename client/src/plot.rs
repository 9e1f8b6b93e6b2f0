//! `memory.svg`: live heap against completed requests, one line per run, with `plotters`.
//! Draws only; reads no files and judges nothing.

use std::path::Path;

use plotters::prelude::*;

use crate::sample::{Sample, SampleKind};

/// One reading on the plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Completed (or served) requests at the reading: the x axis.
    pub requests: u64,
    /// Live heap bytes: the y axis.
    pub bytes: u64,
    /// Taken with every worker idle: marked with a dot.
    pub quiescent: bool,
}

impl From<&Sample> for Point {
    /// A variant's sample: its live heap, dotted when quiescent.
    fn from(s: &Sample) -> Point {
        Point {
            requests: s.requests,
            bytes: s.live,
            quiescent: s.kind == SampleKind::Quiescent,
        }
    }
}

/// One line of the plot.
#[derive(Debug)]
pub struct Line<'a> {
    pub label: String,
    pub points: &'a [Point],
    /// Drawn dashed (a control run).
    pub dashed: bool,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Writes an SVG plot of live heap (MiB) vs completed requests to `path`.
pub fn memory_svg(path: &Path, title: &str, lines: &[Line<'_>]) -> Result<(), String> {
    let max_x = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.requests))
        .max()
        .unwrap_or(1)
        .max(1);
    let max_y = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.bytes))
        .max()
        .unwrap_or(1) as f64
        / MIB;
    let root = SVGBackend::new(path, (PLOT_WIDTH + LEGEND_WIDTH, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    // The legend beside the plot, never over a line.
    let (plot, legend) = root.split_horizontally(PLOT_WIDTH);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0u64..max_x, 0f64..(max_y * 1.1).max(0.01))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("completed requests   (● = reading with every worker idle)")
        .y_desc("live heap (MiB)")
        .x_label_formatter(&|x| crate::units::count(*x))
        .y_label_formatter(&|y| format!("{y:.2}"))
        // A quiet minor grid: 4 light lines between two major ones (plotters' default: 10).
        .max_light_lines(4)
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(|e| e.to_string())?;

    for (i, line) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let busy: Vec<(u64, f64)> = line
            .points
            .iter()
            .map(|p| (p.requests, p.bytes as f64 / MIB))
            .collect();
        let style = color.stroke_width(2);
        if line.dashed {
            chart.draw_series(DashedLineSeries::new(busy, DASH, GAP, style))
        } else {
            chart.draw_series(LineSeries::new(busy, style))
        }
        .map_err(|e| e.to_string())?;
        // Quiescent readings (every worker idle) are the cleanest evidence: mark them.
        let idle = line
            .points
            .iter()
            .filter(|p| p.quiescent)
            .map(|p| Circle::new((p.requests, p.bytes as f64 / MIB), 4, color.filled()));
        chart.draw_series(idle).map_err(|e| e.to_string())?;
    }
    draw_legend(&legend, lines).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// The legend: one entry per line, top to bottom, each drawn as its line is (dashed or solid).
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    lines: &[Line<'_>],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // Level with the plot's top edge (below the caption).
    let top = 60;
    for (i, line) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let y = top + 24 * i32::try_from(i).unwrap_or(i32::MAX / 48);
        let sample = [(4, y), (40, y)];
        let style = color.stroke_width(2);
        if line.dashed {
            area.draw(&plotters::element::DashedPathElement::new(
                sample, DASH, GAP, style,
            ))?;
        } else {
            area.draw(&PathElement::new(sample, style))?;
        }
        area.draw(&Text::new(
            line.label.clone(),
            (48, y - 7),
            ("sans-serif", 16).into_font().color(&BLACK),
        ))?;
    }
    Ok(())
}

/// Width of the plot, and of the legend column to its right.
const PLOT_WIDTH: u32 = 1000;
const LEGEND_WIDTH: u32 = 260;
/// A dashed line's dash and gap, in pixels (plot and legend alike).
const DASH: u32 = 6;
const GAP: u32 = 4;

const MIB: f64 = 1024.0 * 1024.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn series(slope: u64) -> Vec<Point> {
        let samples: Vec<Sample> = (0..200u64)
            .map(|i| Sample {
                t_ms: i,
                kind: if i % 50 == 49 {
                    SampleKind::Quiescent
                } else {
                    SampleKind::Request
                },
                round: (i / 50) as u32,
                requests: i * 10,
                ok: i * 10,
                errors: 0,
                live: 500_000 + slope * i * 10,
                peak: 0,
                allocs: 0,
                allocated_bytes: 0,
                rss: None,
                connections: 1,
            })
            .collect();
        samples.iter().map(Point::from).collect()
    }

    #[test]
    fn a_sample_is_plotted_at_its_live_heap_and_dotted_only_when_quiescent() {
        let mut s = Sample {
            t_ms: 7,
            kind: SampleKind::Quiescent,
            round: 1,
            requests: 1_000,
            ok: 990,
            errors: 10,
            live: 123_456,
            peak: 200_000,
            allocs: 5,
            allocated_bytes: 6,
            rss: Some(9),
            connections: 2,
        };
        let p = Point::from(&s);
        assert_eq!(
            p,
            Point {
                requests: 1_000,
                bytes: 123_456,
                quiescent: true
            }
        );
        for kind in [SampleKind::Start, SampleKind::Request, SampleKind::Interval] {
            s.kind = kind;
            assert!(!Point::from(&s).quiescent, "{kind:?} is not dotted");
        }
    }

    #[test]
    fn draws_one_labelled_line_per_run() {
        let dir = std::env::temp_dir().join(format!("leakprobe-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("memory.svg");
        let (flat, leaky) = (series(0), series(1024));
        let lines = [
            Line {
                label: "ureq — stable".into(),
                points: &flat,
                dashed: false,
            },
            Line {
                label: "raw+leak (control) — leak".into(),
                points: &leaky,
                dashed: true,
            },
        ];
        memory_svg(&path, "live heap vs requests", &lines).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(
            svg.starts_with("<svg") || svg.starts_with("<?xml"),
            "{}",
            &svg[..80.min(svg.len())]
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "ureq — stable",
            "raw+leak (control) — leak",
            "completed requests",
            "live heap (MiB)",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(svg.matches("<polyline").count() >= 2 || svg.matches("<path").count() >= 2);
        // The legend sits right of the plot, over no line: each label's `x` is past the plot.
        for label in ["ureq — stable", "raw+leak (control) — leak"] {
            let at = svg.find(label).expect("label");
            let open = svg[..at].rfind("<text x=\"").expect("a text element") + 9;
            let x: u32 = svg[open..]
                .split('"')
                .next()
                .and_then(|x| x.parse().ok())
                .expect("x");
            assert!(x > PLOT_WIDTH, "{label} at x={x}");
        }
        // The control's legend entry is dashed like its line (several segments), the other solid.
        let legend_segments = |color: &str| {
            svg.lines()
                .filter(|l| l.contains(&format!("stroke=\"{color}\"")))
                .filter_map(|l| {
                    l.split("points=\"")
                        .nth(1)?
                        .split(',')
                        .next()?
                        .parse::<u32>()
                        .ok()
                })
                .filter(|&x| x > PLOT_WIDTH)
                .count()
        };
        assert_eq!(legend_segments("#1F77B4"), 1, "solid");
        assert!(legend_segments("#FF7F0E") > 1, "dashed");
        // A light minor grid, half as dense as plotters' default (10 between two major lines).
        let minor = svg.matches("stroke=\"#EEEEEE\"").count();
        let major = svg.matches("opacity=\"0.2\" stroke=\"#000000\"").count();
        assert!(
            minor > 0 && minor <= 6 * major,
            "{minor} minor, {major} major grid lines"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
