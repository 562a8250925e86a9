//! The SVG plot: stream throughput by chunk size, and ping-pong latency
//! percentiles (spin and block), one line per transport.

use crate::bench::{CaseKind, CaseResult};
use crate::driver::Target;
use crate::report::latency_stats;
use crate::transport::{Kind, Wait};
use crate::util::fmt_size;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

fn color(t: Target) -> RGBColor {
    match t {
        Target::Floor => RGBColor(0, 0, 0),
        Target::FramedFloor => RGBColor(110, 110, 110),
        Target::Transport(k) => match k {
            Kind::Pipe => RGBColor(140, 140, 140),
            Kind::Unix => RGBColor(90, 90, 200),
            Kind::Tlpi1k => RGBColor(200, 150, 50),
            Kind::Tlpi64k => RGBColor(170, 100, 0),
            Kind::Iceoryx2 => RGBColor(30, 150, 60),
            Kind::Iceoryx2Zc => RGBColor(120, 190, 40),
            Kind::SvshmStream => RGBColor(220, 30, 30),
            Kind::SvshmMsg => RGBColor(200, 0, 160),
            Kind::SvshmZc => RGBColor(0, 160, 200),
        },
    }
}

fn targets(results: &[CaseResult]) -> Vec<Target> {
    let mut v: Vec<Target> = Vec::new();
    for cr in results {
        for s in &cr.series {
            if !v.contains(&s.target) {
                v.push(s.target);
            }
        }
    }
    v
}

/// Draws `target`'s points as a line with a dot at each point, in its colour,
/// with a legend entry.
fn draw_line<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    target: Target,
    pts: &[(f64, f64)],
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let c = color(target);
    chart
        .draw_series(LineSeries::new(pts.to_vec(), c.stroke_width(2)))
        .map_err(|e| anyhow!("{e:?}"))?
        .label(target.name())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// Draws the legend box of `chart` at `position`.
fn draw_legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// Fills `root` white, writes `title` and the `subtitle` lines at its top and
/// returns the area below them.
fn titled<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    title: &str,
    subtitle: &[String],
) -> Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>> {
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let (top, body) = root.split_vertically(60);
    top.draw(&Text::new(
        title.to_string(),
        (10, 8),
        ("sans-serif", 17).into_font(),
    ))
    .map_err(|e| anyhow!("{e:?}"))?;
    for (i, line) in subtitle.iter().enumerate() {
        top.draw(&Text::new(
            line.clone(),
            (10, 30 + 15 * i as i32),
            ("sans-serif", 12).into_font(),
        ))
        .map_err(|e| anyhow!("{e:?}"))?;
    }
    Ok(body)
}

/// One panel of a log-log line plot: a line per target.
pub struct Panel {
    /// Caption over the panel.
    pub caption: String,
    /// X axis description (the x values are byte sizes).
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// The lines: a target and its (x, y) points, both positive.
    pub lines: Vec<(Target, Vec<(f64, f64)>)>,
}

/// The smallest and largest of `v` (positive, finite values only), widened by
/// `pad` (a factor) on both sides; `(1, 10)` if there are none.
fn log_range(v: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = v
        .filter(|x| x.is_finite() && *x > 0.0)
        .fold((f64::INFINITY, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if lo.is_finite() {
        (lo / pad, hi * pad)
    } else {
        (1.0, 10.0)
    }
}

/// Writes log-log line plots, `panels` side by side, to `path` (x: sizes in
/// bytes, ticks at powers of 4); `y_fmt` labels the y axis.
pub fn write_loglog(
    path: &Path,
    title: &str,
    subtitle: &[String],
    panels: &[Panel],
    y_fmt: &dyn Fn(f64) -> String,
) -> Result<()> {
    let width = 120 + 560 * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 560)).into_drawing_area();
    let body = titled(&root, title, subtitle)?;
    let areas = body.split_evenly((1, panels.len().max(1)));
    for (p, area) in panels.iter().zip(&areas) {
        let pts = || p.lines.iter().flat_map(|(_, v)| v.iter().copied());
        // x is drawn as log2(bytes) on a linear axis, so that the ticks
        // fall on powers of two and read as sizes.
        let (x0, x1) = log_range(pts().map(|(x, _)| x), 1.4);
        let (x0, x1) = (x0.log2(), x1.log2());
        let (y0, y1) = log_range(pts().map(|(_, y)| y), 1.6);
        let mut chart = ChartBuilder::on(area)
            .caption(p.caption.clone(), ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc(p.x_desc.clone())
            .y_desc(p.y_desc.clone())
            .x_labels(((x1 - x0) as usize + 1).max(2))
            .x_label_formatter(&|x| {
                let r = x.round();
                if (x - r).abs() < 0.01 && r >= 0.0 && (r as u32) % 2 == 0 {
                    fmt_size(1u64 << (r as u32))
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| y_fmt(*y))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        for (t, v) in &p.lines {
            let v: Vec<(f64, f64)> = v.iter().map(|&(x, y)| (x.log2(), y)).collect();
            if !v.is_empty() {
                draw_line(&mut chart, *t, &v)?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// Nanoseconds as a short label: `250 ns`, `1.5 µs`, `20 µs`, `3 ms`.
pub fn fmt_ns(v: f64) -> String {
    let (x, unit) = if v >= 1e6 {
        (v / 1e6, "ms")
    } else if v >= 1e3 {
        (v / 1e3, "µs")
    } else {
        (v, "ns")
    };
    if x >= 10.0 || (x - x.round()).abs() < 0.05 {
        format!("{x:.0} {unit}")
    } else {
        format!("{x:.1} {unit}")
    }
}

/// Writes the plot to `path`; `subtitle` lines go under the title.
pub fn write_svg(results: &[CaseResult], path: &Path, subtitle: &[String]) -> Result<()> {
    let root = SVGBackend::new(path, (1500, 580)).into_drawing_area();
    let body = titled(
        &root,
        "svshm-bench: two processes, side by side, with the two-thread floor",
        subtitle,
    )?;
    let panels = body.split_evenly((1, 3));
    let all = targets(results);

    // Panel 1: throughput by chunk size.
    let streams: Vec<&CaseResult> = results
        .iter()
        .filter(|c| matches!(c.kind, CaseKind::Stream { .. }))
        .collect();
    let mut ymax: f64 = 1.0;
    for cr in &streams {
        for s in &cr.series {
            if let Some(v) = s.median(&cr.kind, "value").filter(|v| v.is_finite()) {
                ymax = ymax.max(v);
            }
        }
    }
    let xs: Vec<f64> = streams
        .iter()
        .filter_map(|c| match c.kind {
            CaseKind::Stream { chunk } => Some((chunk as f64).log2()),
            _ => None,
        })
        .collect();
    let (x0, x1) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let (x0, x1) = if x0.is_finite() {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (11.5, 20.5)
    };
    {
        let mut chart = ChartBuilder::on(&panels[0])
            .caption("stream throughput (GB/s, median)", ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(x0..x1, 0f64..ymax * 1.15)
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc("chunk size")
            .y_desc("GB/s")
            .x_labels(((x1 - x0) as usize + 1).max(2))
            .x_label_formatter(&|x| {
                let r = x.round();
                if (x - r).abs() < 0.01 && r >= 0.0 {
                    fmt_size(1u64 << (r as u32))
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        for &t in &all {
            let pts: Vec<(f64, f64)> = streams
                .iter()
                .filter_map(|cr| {
                    let CaseKind::Stream { chunk } = cr.kind else {
                        return None;
                    };
                    let v = cr.get(t)?.median(&cr.kind, "value")?;
                    v.is_finite().then_some(((chunk as f64).log2(), v))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            draw_line(&mut chart, t, &pts)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperMiddle)?;
    }

    // Panels 2 and 3: latency percentiles, spin and block.
    for (i, wait) in [Wait::Spin, Wait::Block].into_iter().enumerate() {
        let Some(cr) = results
            .iter()
            .find(|c| matches!(c.kind, CaseKind::PingPong { wait: w, .. } if w == wait))
        else {
            continue;
        };
        let stats = latency_stats();
        let mut lo = f64::INFINITY;
        let mut hi: f64 = 1.0;
        for s in &cr.series {
            for st in stats {
                if let Some(v) = s.median(&cr.kind, st).filter(|v| v.is_finite() && *v > 0.0) {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
        let lo = if lo.is_finite() {
            (lo / 2.0).max(1.0)
        } else {
            1.0
        };
        let CaseKind::PingPong { size, .. } = cr.kind else {
            continue;
        };
        let mut chart = ChartBuilder::on(&panels[i + 1])
            .caption(
                format!("round trip, {size} B, {} wait (ns, log)", wait.name()),
                ("sans-serif", 15),
            )
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(
                -0.3f64..(stats.len() as f64 - 0.7),
                (lo..hi * 2.0).log_scale(),
            )
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_labels(stats.len())
            .x_label_formatter(&|x| {
                let r = x.round();
                if (x - r).abs() < 0.01 && r >= 0.0 {
                    stats
                        .get(r as usize)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("round trip")
            .y_label_formatter(&|v| fmt_ns(*v))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        for s in &cr.series {
            if s.error.is_some() || s.outcomes.is_empty() {
                continue;
            }
            let pts: Vec<(f64, f64)> = stats
                .iter()
                .enumerate()
                .filter_map(|(j, st)| {
                    s.median(&cr.kind, st)
                        .filter(|v| v.is_finite() && *v > 0.0)
                        .map(|v| (j as f64, v))
                })
                .collect();
            draw_line(&mut chart, s.target, &pts)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}
