//! Tables, the DESIGN.md target check and the machine description.

use crate::bench::{CaseKind, CaseResult};
use crate::driver::{Ctx, Target};
use crate::stats::LATENCY_STATS;
use crate::transport::{Kind, Wait};
use std::fmt::Write;

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line describing the machine: CPU model, kernel, CPUs, governor, load.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mhz = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("cpu MHz")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let ncpu = crate::util::allowed_cpus().len();
    let gov = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "n/a".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "CPU: {model} ({mhz} MHz), {ncpu} CPUs usable; kernel {kernel}; governor {gov}; load average {}",
        load.join(" ")
    )
}

fn fmt_value(case: &CaseKind, v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    match case {
        CaseKind::Stream { .. } => format!("{v:.2}"),
        CaseKind::Messages { .. } => format!("{:.2} M", v / 1e6),
        CaseKind::PingPong { .. } => format!("{v:.0}"),
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => "—".into(),
    }
}

fn wait_label(w: Option<Wait>) -> &'static str {
    w.map(Wait::name).unwrap_or("")
}

/// Writes the failed-run notes of a case, below its table.
fn footnotes(s: &mut String, cr: &CaseResult, runs: usize) {
    let mut first = true;
    for se in &cr.series {
        if se.failures.is_empty() {
            continue;
        }
        if first {
            s.push('\n');
            first = false;
        }
        let _ = writeln!(
            s,
            "- {}: {} of {runs} measured runs failed (not retried; the median is of the rest): {}",
            se.target.name(),
            se.failures.len(),
            se.failures.join("; ").replace('|', "/")
        );
    }
}

/// Markdown tables of all cases.
pub fn tables(results: &[CaseResult], runs: usize) -> String {
    let mut s = String::new();
    for cr in results {
        let _ = writeln!(s, "\n### {}\n", cr.kind.title());
        let bp = cr.best_peer(if cr.kind.higher_is_better() {
            "value"
        } else {
            "p50"
        });
        let best = bp.map(|(t, _)| t.name()).unwrap_or("—");
        match cr.kind {
            CaseKind::PingPong { .. } => {
                let _ = writeln!(
                    s,
                    "| transport | wait | round trips | p50 ns | p99 ns | p99.9 ns | max ns | p50 vs best peer ({best}) | p50 vs floor |"
                );
                let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
                for se in &cr.series {
                    if let Some(e) = &se.error {
                        let _ = writeln!(
                            s,
                            "| {} | {} | failed: {} |||||||",
                            se.target.name(),
                            wait_label(se.wait),
                            e.replace('|', "/")
                        );
                        continue;
                    }
                    let l = se.median_latency(&cr.kind).unwrap_or_default();
                    let p50 = l.p50 as f64;
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        se.target.name(),
                        wait_label(se.wait),
                        l.n,
                        l.p50,
                        l.p99,
                        l.p999,
                        l.max,
                        fmt_ratio(bp.map(|(_, v)| p50 / v)),
                        fmt_ratio(cr.floor("p50").map(|f| p50 / f)),
                    );
                }
            }
            _ => {
                let unit = cr.kind.unit();
                let _ = writeln!(
                    s,
                    "| transport | wait | {unit} (median of {runs}) | min … max | vs best peer ({best}) | vs floor |"
                );
                let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
                for se in &cr.series {
                    if let Some(e) = &se.error {
                        let _ = writeln!(
                            s,
                            "| {} | {} | failed: {} ||||",
                            se.target.name(),
                            wait_label(se.wait),
                            e.replace('|', "/")
                        );
                        continue;
                    }
                    let v = se.values(&cr.kind, "value");
                    let med = se.median(&cr.kind, "value").unwrap_or(f64::NAN);
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} … {} | {} | {} |",
                        se.target.name(),
                        wait_label(se.wait),
                        fmt_value(&cr.kind, med),
                        fmt_value(&cr.kind, lo),
                        fmt_value(&cr.kind, hi),
                        fmt_ratio(bp.map(|(_, b)| med / b)),
                        fmt_ratio(cr.floor("value").map(|f| med / f)),
                    );
                }
            }
        }
        footnotes(&mut s, cr, runs);
    }
    s
}

fn find(results: &[CaseResult], pred: impl Fn(&CaseKind) -> bool) -> Option<&CaseResult> {
    results.iter().find(|c| pred(&c.kind))
}

fn med(cr: &CaseResult, t: Target, stat: &str) -> Option<f64> {
    cr.get(t)
        .and_then(|s| s.median(&cr.kind, stat))
        .filter(|v| v.is_finite())
}

/// The DESIGN.md performance targets, checked against this run. Stream targets
/// use `svshm-stream`; latency and message targets use `svshm-msg` (fixed in
/// advance, not the best svshm row).
pub fn targets(results: &[CaseResult], mem: &[crate::bench::JsonLine]) -> String {
    let mut s = String::from("| DESIGN.md target | this run |\n|---|---|\n");
    let mut line = |what: &str,
                    got: Option<(f64, f64)>,
                    fmt: &dyn Fn(f64) -> String,
                    ok: &dyn Fn(f64, f64) -> bool| {
        let status = match got {
            Some((v, l)) if ok(v, l) => format!("MET ({} vs limit {})", fmt(v), fmt(l)),
            Some((v, l)) => format!("MISSED ({} vs limit {})", fmt(v), fmt(l)),
            None => "not measured".into(),
        };
        let _ = writeln!(s, "| {what} | {status} |");
    };
    let stream = Target::Transport(Kind::SvshmStream);
    let msg = Target::Transport(Kind::SvshmMsg);
    let ge = |v: f64, l: f64| v >= l;
    let le = |v: f64, l: f64| v <= l;
    let ratio = |x: f64| format!("{x:.2}×");
    let ns = |x: f64| format!("{x:.0} ns");
    if let Some(cr) = find(results, |k| *k == CaseKind::Stream { chunk: 65536 }) {
        let sv = med(cr, stream, "value");
        let ice = med(cr, Target::Transport(Kind::Iceoryx2), "value");
        let kern = [Kind::Pipe, Kind::Unix]
            .iter()
            .filter_map(|&k| med(cr, Target::Transport(k), "value"))
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        let fl = med(cr, Target::Floor, "value");
        line(
            "stream 64 KiB ≥ 1.5× iceoryx2",
            sv.zip(ice).map(|(a, b)| (a / b, 1.5)),
            &ratio,
            &ge,
        );
        line(
            "stream 64 KiB ≥ 3× max(pipe, unix)",
            sv.zip(kern).map(|(a, b)| (a / b, 3.0)),
            &ratio,
            &ge,
        );
        line(
            "stream 64 KiB ≥ 50% of floor",
            sv.zip(fl).map(|(a, b)| (a / b, 0.5)),
            &ratio,
            &ge,
        );
    }
    if let Some(cr) = find(results, |k| {
        matches!(
            k,
            CaseKind::PingPong {
                size: 64,
                wait: Wait::Spin
            }
        )
    }) {
        let sv = med(cr, msg, "p50");
        let fl = med(cr, Target::Floor, "p50");
        let ice = med(cr, Target::Transport(Kind::Iceoryx2), "p50");
        line(
            "spin round trip 64 B: p50 ≤ 2× floor",
            sv.zip(fl).map(|(a, b)| (a, 2.0 * b)),
            &ns,
            &le,
        );
        line(
            "spin round trip 64 B: p50 below iceoryx2",
            sv.zip(ice),
            &ns,
            &|v, l| v < l,
        );
    }
    if let Some(cr) = find(results, |k| {
        matches!(
            k,
            CaseKind::PingPong {
                size: 64,
                wait: Wait::Block
            }
        )
    }) {
        let sv = med(cr, msg, "p50");
        let ux = med(cr, Target::Transport(Kind::Unix), "p50");
        line(
            "block round trip 64 B: p50 ≤ 0.5× unix socket",
            sv.zip(ux).map(|(a, b)| (a, 0.5 * b)),
            &ns,
            &le,
        );
    }
    if let Some(cr) = find(results, |k| matches!(k, CaseKind::Messages { size: 64 })) {
        let sv = med(cr, msg, "value");
        line(
            "64 B messages ≥ 10 M/s",
            sv.map(|v| (v, 10e6)),
            &|x| format!("{:.2} M/s", x / 1e6),
            &ge,
        );
    }
    let worst = mem
        .iter()
        .filter(|j| {
            j.workload == "memory"
                && Kind::ALL
                    .iter()
                    .any(|k| k.is_svshm() && k.name() == j.transport)
        })
        .map(|j| j.value)
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    line(
        "endpoint RSS < 16 MiB beyond the ring",
        worst.map(|w| (w, 16.0 * 1024.0)),
        &|x| format!("{:.1} MiB", x / 1024.0),
        &|v, l| v < l,
    );
    s
}

/// How the endpoints were placed.
pub fn placement(ctx: &Ctx) -> String {
    match ctx.cpus {
        Some((a, b)) => format!(
            "pinned: writer/ping process on CPU {a}, reader/pong process on CPU {b} (sched_setaffinity); floor threads likewise"
        ),
        None => "not pinned (fewer than 2 usable CPUs, or --no-pin)".into(),
    }
}

/// The statistics a ping-pong reports, for the plot.
pub fn latency_stats() -> &'static [&'static str] {
    &LATENCY_STATS
}
