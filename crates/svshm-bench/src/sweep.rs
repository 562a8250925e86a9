//! `svshm-bench sweep`: how cost grows. A message-size sweep (one-way
//! messages and byte streams, 16 B to 16 MiB in powers of 4, svshm against
//! iceoryx2, unix socket and pipe) and a ring-size sweep (an svshm byte stream
//! of 64 KiB chunks over rings of 16 KiB to 64 MiB). Each point is a short run
//! of the ordinary harness (calibrated, then measured `runs` times, median
//! kept; ring-size points move a fixed [`ring_bytes`] instead of being
//! calibrated); the results are markdown tables and log-log SVG plots.
//!
//! Payloads start at 16 B, not 8: every payload carries two 8-byte stamps for
//! verification.

use crate::bench::{Case, CaseKind, CaseResult, Plan, run_plan};
use crate::driver::{Ctx, Target};
use crate::plot::{Panel, write_loglog};
use crate::transport::Kind;
use crate::util::fmt_size;
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Transports of the message-size sweep, messages.
pub const MESSAGE_KINDS: [Kind; 4] = [Kind::SvshmMsg, Kind::Iceoryx2, Kind::Unix, Kind::Pipe];
/// Transports of the message-size sweep, byte streams.
pub const STREAM_KINDS: [Kind; 4] = [Kind::SvshmStream, Kind::Iceoryx2, Kind::Unix, Kind::Pipe];
/// Chunk of the ring-size sweep.
pub const RING_CHUNK: usize = 64 << 10;

/// Payload sizes: 16 B to 16 MiB by ×4 (×16 when quick).
pub fn sizes(quick: bool) -> Vec<usize> {
    let step = if quick { 4 } else { 2 };
    (4..=24).step_by(step).map(|b| 1usize << b).collect()
}

/// Ring sizes: 16 KiB to 64 MiB by ×4 (×16 when quick).
pub fn rings(quick: bool) -> Vec<usize> {
    let step = if quick { 4 } else { 2 };
    (14..=26).step_by(step).map(|b| 1usize << b).collect()
}

/// Bytes per run of the ring-size sweep: 256 MiB, or 8 laps of the ring if more.
pub fn ring_bytes(ring: usize) -> u64 {
    (256u64 << 20).max(8 * ring as u64)
}

/// The results of a sweep.
pub struct Sweep {
    /// One case per payload size: one-way messages.
    pub messages: Vec<CaseResult>,
    /// One case per payload size: byte streams with chunks of that size.
    pub streams: Vec<CaseResult>,
    /// One case per ring size: svshm-stream, [`RING_CHUNK`] chunks.
    pub rings: Vec<(usize, CaseResult)>,
    /// Measured runs per point.
    pub runs: usize,
    /// Target seconds per measured run.
    pub seconds: f64,
    /// Wall time of the whole sweep, seconds.
    pub elapsed: f64,
}

/// Runs both sweeps; `kinds`, if not empty, narrows the transports.
pub fn run(ctx: &Ctx, quick: bool, runs: usize, seconds: f64, kinds: &[Kind]) -> Sweep {
    let started = std::time::Instant::now();
    let pick = |all: &[Kind]| -> Vec<Kind> {
        all.iter()
            .copied()
            .filter(|k| kinds.is_empty() || kinds.contains(k))
            .collect()
    };
    let plan = |cases: Vec<CaseKind>, kinds: Vec<Kind>| Plan {
        cases: cases
            .into_iter()
            .map(|kind| Case { kind, fixed: None })
            .collect(),
        kinds,
        floor: false,
        runs,
        seconds,
        wait: None,
    };
    let sz = sizes(quick);
    let by_size = |what: &str, case: fn(usize) -> CaseKind, all: &[Kind]| {
        eprintln!("=== message-size sweep: {what}");
        run_plan(&plan(sz.iter().map(|&n| case(n)).collect(), pick(all)), ctx)
    };
    let messages = by_size(
        "messages",
        |size| CaseKind::Messages { size },
        &MESSAGE_KINDS,
    );
    let streams = by_size(
        "byte streams",
        |chunk| CaseKind::Stream { chunk },
        &STREAM_KINDS,
    );
    let mut ring_results = Vec::new();
    let ring_kinds = pick(&[Kind::SvshmStream]);
    if !ring_kinds.is_empty() {
        for r in rings(quick) {
            eprintln!("=== ring-size sweep: ring {}", fmt_size(r as u64));
            let c = Ctx {
                ring: r,
                exact_ring: true,
                ..ctx.clone()
            };
            // A fixed amount, many laps of the ring, so that the first touch of
            // a large ring's pages is not most of the run.
            let mut p = plan(
                vec![CaseKind::Stream { chunk: RING_CHUNK }],
                ring_kinds.clone(),
            );
            p.cases[0].fixed = Some(ring_bytes(r));
            let mut res = run_plan(&p, &c);
            if let Some(cr) = res.pop() {
                ring_results.push((r, cr));
            }
        }
    }
    Sweep {
        messages,
        streams,
        rings: ring_results,
        runs,
        seconds,
        elapsed: started.elapsed().as_secs_f64(),
    }
}

/// Payload bytes per second of a series' median (messages and streams alike).
pub fn bytes_per_s(cr: &CaseResult, t: Target) -> Option<f64> {
    let v = cr.get(t)?.median(&cr.kind, "value")?;
    let v = match cr.kind {
        CaseKind::Messages { size } => v * size as f64,
        CaseKind::Stream { .. } => v * 1e9,
        CaseKind::PingPong { .. } => return None,
    };
    v.is_finite().then_some(v)
}

/// The payload size of a sweep case.
pub fn payload(cr: &CaseResult) -> usize {
    match cr.kind {
        CaseKind::Messages { size } | CaseKind::PingPong { size, .. } => size,
        CaseKind::Stream { chunk } => chunk,
    }
}

/// The targets of a list of cases, in first-seen order.
fn targets_of<'a>(cases: impl Iterator<Item = &'a CaseResult>) -> Vec<Target> {
    let mut v: Vec<Target> = Vec::new();
    for cr in cases {
        for s in &cr.series {
            if !v.contains(&s.target) {
                v.push(s.target);
            }
        }
    }
    v
}

fn fmt_rate(bps: Option<f64>) -> String {
    match bps {
        Some(b) if b >= 1e9 => format!("{:.2} GB/s", b / 1e9),
        Some(b) => format!("{:.0} MB/s", b / 1e6),
        None => "—".into(),
    }
}

fn fmt_count(m: f64) -> String {
    if m >= 1e6 {
        format!("{:.2} M msg/s", m / 1e6)
    } else if m >= 1e3 {
        format!("{:.1} k msg/s", m / 1e3)
    } else {
        format!("{m:.0} msg/s")
    }
}

/// A markdown table: one row per case (labelled by `x`, in a column headed
/// `head`), one column per target.
fn table(head: &str, cases: &[(String, &CaseResult)], with_rate: bool) -> String {
    let ts = targets_of(cases.iter().map(|(_, c)| *c));
    let mut s = String::new();
    let names: Vec<&str> = ts.iter().map(|t| t.name()).collect();
    let _ = writeln!(s, "| {head} | {} |", names.join(" | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(ts.len()));
    for (x, cr) in cases {
        let cells: Vec<String> = ts
            .iter()
            .map(|&t| {
                let b = bytes_per_s(cr, t);
                match (with_rate, cr.kind, cr.get(t)) {
                    (true, CaseKind::Messages { .. }, Some(se)) => {
                        let m = se.median(&cr.kind, "value").unwrap_or(f64::NAN);
                        format!("{} ({})", fmt_rate(b), fmt_count(m))
                    }
                    _ => fmt_rate(b),
                }
            })
            .collect();
        let _ = writeln!(s, "| {x} | {} |", cells.join(" | "));
    }
    s
}

impl Sweep {
    /// The sweep's tables as markdown, with `###` headings.
    pub fn markdown(&self) -> String {
        fn by_size(v: &[CaseResult]) -> Vec<(String, &CaseResult)> {
            v.iter().map(|c| (fmt_size(payload(c) as u64), c)).collect()
        }
        let mut s = String::new();
        let _ = writeln!(
            s,
            "### message size: one-way messages (payload bytes per second; messages per second)\n"
        );
        s.push_str(&table("size", &by_size(&self.messages), true));
        let _ = writeln!(
            s,
            "\n### message size: byte streams (chunk = size; payload bytes per second)\n"
        );
        s.push_str(&table("chunk", &by_size(&self.streams), false));
        if !self.rings.is_empty() {
            let _ = writeln!(
                s,
                "\n### ring size: svshm-stream, {} chunks (payload bytes per second; 256 MiB or 8 laps of the ring per run)\n",
                fmt_size(RING_CHUNK as u64)
            );
            let rows: Vec<(String, &CaseResult)> = self
                .rings
                .iter()
                .map(|(r, c)| (fmt_size(*r as u64), c))
                .collect();
            s.push_str(&table("ring", &rows, false));
        }
        s
    }

    /// Writes `sweep-size.svg` and `sweep-ring.svg` into `dir`; returns their paths.
    pub fn write_svgs(&self, dir: &Path, subtitle: &[String]) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let panel = |caption: &str, x_desc: &str, cases: &[(f64, &CaseResult)]| {
            let ts = targets_of(cases.iter().map(|(_, c)| *c));
            Panel {
                caption: caption.to_string(),
                x_desc: x_desc.to_string(),
                y_desc: "payload bytes/s".to_string(),
                lines: ts
                    .into_iter()
                    .map(|t| {
                        let pts = cases
                            .iter()
                            .filter_map(|(x, c)| bytes_per_s(c, t).map(|y| (*x, y)))
                            .collect();
                        (t, pts)
                    })
                    .collect(),
            }
        };
        fn sized(v: &[CaseResult]) -> Vec<(f64, &CaseResult)> {
            v.iter().map(|c| (payload(c) as f64, c)).collect()
        }
        let rate = |y: f64| fmt_rate(Some(y));
        let mut out = Vec::new();
        let p = dir.join("sweep-size.svg");
        write_loglog(
            &p,
            "svshm-bench sweep: throughput by message size (log-log)",
            subtitle,
            &[
                panel("one-way messages", "message size", &sized(&self.messages)),
                panel("byte stream", "chunk size", &sized(&self.streams)),
            ],
            &rate,
        )
        .with_context(|| format!("write {}", p.display()))?;
        out.push(p);
        if !self.rings.is_empty() {
            let p = dir.join("sweep-ring.svg");
            let cases: Vec<(f64, &CaseResult)> =
                self.rings.iter().map(|(r, c)| (*r as f64, c)).collect();
            write_loglog(
                &p,
                &format!(
                    "svshm-bench sweep: svshm-stream throughput by ring size, {} chunks (log-log)",
                    fmt_size(RING_CHUNK as u64)
                ),
                subtitle,
                &[panel("byte stream", "ring size", &cases)],
                &rate,
            )
            .with_context(|| format!("write {}", p.display()))?;
            out.push(p);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_span_16_bytes_to_16_mib() {
        for q in [false, true] {
            assert_eq!(sizes(q).first(), Some(&16));
            assert_eq!(sizes(q).last(), Some(&(16 << 20)));
            assert_eq!(rings(q).first(), Some(&(16 << 10)));
            assert_eq!(rings(q).last(), Some(&(64 << 20)));
        }
        assert_eq!(sizes(false).len(), 11);
        assert_eq!(rings(false).len(), 7);
    }
}
