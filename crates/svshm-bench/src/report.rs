//! Tables, the target check and the machine description.

use crate::bench::{CaseKind, CaseResult};
use crate::driver::{Ctx, Target};
use crate::stats::LATENCY_STATS;
use crate::stats::median;
use crate::transport::{Kind, Wait};
use std::collections::BTreeMap;
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

fn fmt_cpu(c: Option<f64>) -> String {
    c.map(|c| format!("{c:.2}")).unwrap_or_else(|| "—".into())
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
                    "| transport | wait | round trips | p50 ns | p99 ns | p99.9 ns | max ns | p50 vs best peer ({best}) | p50 vs floor | CPU busy (cores) | CPU µs per round trip |"
                );
                let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
                for se in &cr.series {
                    if let Some(e) = &se.error {
                        let _ = writeln!(
                            s,
                            "| {} | {} | failed: {} |||||||||",
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
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        se.target.name(),
                        wait_label(se.wait),
                        l.n,
                        l.p50,
                        l.p99,
                        l.p999,
                        l.max,
                        fmt_ratio(bp.map(|(_, v)| p50 / v)),
                        fmt_ratio(cr.floor("p50").map(|f| p50 / f)),
                        fmt_cpu(se.cpu_busy()),
                        se.cpu_per_unit()
                            .map(|c| format!("{:.2}", c / 1e3))
                            .unwrap_or_else(|| "—".into()),
                    );
                }
            }
            _ => {
                let unit = cr.kind.unit();
                let _ = writeln!(
                    s,
                    "| transport | wait | {unit} (median of {runs}) | min … max | vs best peer ({best}) | vs floor | CPU busy (cores) |"
                );
                let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
                for se in &cr.series {
                    if let Some(e) = &se.error {
                        let _ = writeln!(
                            s,
                            "| {} | {} | failed: {} |||||",
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
                        "| {} | {} | {} | {} … {} | {} | {} | {} |",
                        se.target.name(),
                        wait_label(se.wait),
                        fmt_value(&cr.kind, med),
                        fmt_value(&cr.kind, lo),
                        fmt_value(&cr.kind, hi),
                        fmt_ratio(bp.map(|(_, b)| med / b)),
                        fmt_ratio(cr.floor("value").map(|f| med / f)),
                        fmt_cpu(se.cpu_busy()),
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

/// The 64-byte ping-pong case with wait mode `wait`, if the run had it.
fn pingpong_64(results: &[CaseResult], wait: Wait) -> Option<&CaseResult> {
    find(
        results,
        |k| matches!(*k, CaseKind::PingPong { size: 64, wait: w } if w == wait),
    )
}

/// Per-round values of a statistic of a target in a case.
fn rounds(cr: &CaseResult, t: Target, stat: &str) -> BTreeMap<usize, f64> {
    cr.get(t)
        .map(|s| s.by_round(&cr.kind, stat))
        .unwrap_or_default()
}

/// (ratio of the medians, median of the per-round ratios, rounds paired).
fn ratios(a: &BTreeMap<usize, f64>, b: &BTreeMap<usize, f64>) -> Option<(f64, f64, usize)> {
    let va: Vec<f64> = a.values().copied().collect();
    let vb: Vec<f64> = b.values().copied().collect();
    if va.is_empty() || vb.is_empty() {
        return None;
    }
    let of_medians = median(&va) / median(&vb);
    let paired: Vec<f64> = a
        .iter()
        .filter_map(|(r, x)| b.get(r).map(|y| x / y))
        .collect();
    let per_round = if paired.is_empty() {
        f64::NAN
    } else {
        median(&paired)
    };
    Some((of_medians, per_round, paired.len()))
}

/// One relative target (or bound) checked against a run.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is compared, as printed.
    pub what: String,
    /// (ratio of the medians, median of per-round ratios, rounds paired).
    pub got: Option<(f64, f64, usize)>,
    /// The limit (None: a bound, printed with no verdict).
    pub limit: Option<f64>,
    /// Whether the ratio must be at least (true) or at most (false) the limit.
    pub higher: bool,
}

impl Check {
    /// `Some(true)` met, `Some(false)` missed, `None` a bound or not measured.
    pub fn met(&self) -> Option<bool> {
        let ok = |v: f64, l: f64| if self.higher { v >= l } else { v <= l };
        match (self.got, self.limit) {
            (Some((m, p, _)), Some(l)) => Some(ok(m, l) && ok(p, l)),
            _ => None,
        }
    }

    /// The verdict column.
    pub fn verdict(&self) -> &'static str {
        match (self.met(), self.got, self.limit) {
            (Some(true), _, _) => "MET",
            (Some(false), _, _) => "MISSED",
            (None, Some(_), None) => "bound",
            _ => "not measured",
        }
    }
}

/// The project's relative performance targets, checked against this run.
/// Stream targets use `svshm-stream`; latency and message targets use
/// `svshm-msg` (fixed in advance, not the best svshm row); the zero-copy race
/// is `svshm-zc` against `iceoryx2-zc`. Each ratio is given two ways: the
/// ratio of the medians in the tables, and the median over rounds of the ratio
/// within a round (runs of one round are close in time, so this cancels slow
/// drift on a shared machine). A target counts as met only if both meet it.
pub fn checks(results: &[CaseResult]) -> Vec<Check> {
    let mut out = Vec::new();
    // `limit: None` marks a bound (what no transport of that kind can beat on
    // this machine), printed for context with no verdict.
    let mut line =
        |what: &str, got: Option<(f64, f64, usize)>, limit: Option<f64>, higher: bool| {
            out.push(Check {
                what: what.to_string(),
                got,
                limit,
                higher,
            })
        };
    let stream = Target::Transport(Kind::SvshmStream);
    let msg = Target::Transport(Kind::SvshmMsg);
    let ice = Target::Transport(Kind::Iceoryx2);
    let zc = Target::Transport(Kind::SvshmZc);
    let ice_zc = Target::Transport(Kind::Iceoryx2Zc);
    if let Some(cr) = find(results, |k| *k == CaseKind::Stream { chunk: 65536 }) {
        let sv = rounds(cr, stream, "value");
        line(
            "copy stream 64 KiB ≥ 0.9× the two-thread memcpy floor",
            ratios(&sv, &rounds(cr, Target::Floor, "value")),
            Some(0.9),
            true,
        );
        line(
            "copy stream 64 KiB ≥ iceoryx2",
            ratios(&sv, &rounds(cr, ice, "value")),
            Some(1.0),
            true,
        );
        line(
            "(bound) two-thread memcpy floor ÷ iceoryx2: the most any copy-in/copy-out transport can reach",
            ratios(
                &rounds(cr, Target::Floor, "value"),
                &rounds(cr, ice, "value"),
            ),
            None,
            true,
        );
        line(
            "zero-copy stream 64 KiB: svshm-zc ≥ iceoryx2-zc",
            ratios(&rounds(cr, zc, "value"), &rounds(cr, ice_zc, "value")),
            Some(1.0),
            true,
        );
    }
    if let Some(cr) = pingpong_64(results, Wait::Spin) {
        let sv = rounds(cr, msg, "p50");
        let framed = rounds(cr, Target::FramedFloor, "p50");
        line(
            "spin round trip 64 B: p50 ≤ 1.25× the cache-line floor",
            ratios(&sv, &rounds(cr, Target::Floor, "p50")),
            Some(1.25),
            false,
        );
        line(
            "(bound) framed-ring floor ÷ cache-line floor: what any ring of 64 B frames costs over one bounced word",
            ratios(&framed, &rounds(cr, Target::Floor, "p50")),
            None,
            false,
        );
        line(
            "spin round trip 64 B: p50 ≤ 1.25× the framed-ring floor",
            ratios(&sv, &framed),
            Some(1.25),
            false,
        );
        line(
            "zero-copy spin round trip 64 B: svshm-zc p50 ≤ 1.25× the framed-ring floor",
            ratios(&rounds(cr, zc, "p50"), &framed),
            Some(1.25),
            false,
        );
        line(
            "spin round trip 64 B: p50 below iceoryx2 (< 1×)",
            ratios(&sv, &rounds(cr, ice, "p50")),
            Some(0.999_999),
            false,
        );
        line(
            "zero-copy spin round trip 64 B: svshm-zc p50 ≤ iceoryx2-zc",
            ratios(&rounds(cr, zc, "p50"), &rounds(cr, ice_zc, "p50")),
            Some(1.0),
            false,
        );
    }
    if let Some(cr) = pingpong_64(results, Wait::Block) {
        let sv = rounds(cr, msg, "p50");
        let unix = rounds(cr, Target::Transport(Kind::Unix), "p50");
        line(
            "block round trip 64 B (svshm Wait::Block: futex sleep at once): p50 ≤ 1.1× the two-thread futex hand-off floor",
            ratios(&sv, &rounds(cr, Target::Floor, "p50")),
            Some(1.1),
            false,
        );
        line(
            "(bound) two-thread futex hand-off ÷ unix socket: the least any sleeping hand-off can take",
            ratios(&rounds(cr, Target::Floor, "p50"), &unix),
            None,
            false,
        );
    }
    if let Some(cr) = pingpong_64(results, Wait::Adaptive) {
        let sv = rounds(cr, msg, "p50");
        let unix = rounds(cr, Target::Transport(Kind::Unix), "p50");
        line(
            "blocking call 64 B (svshm's default Wait::Adaptive: spins DEFAULT_SPIN, 50 µs, then sleeps on a futex; unix blocks): p50 ≤ 0.5× unix socket",
            ratios(&sv, &unix),
            Some(0.5),
            false,
        );
    }
    if let Some(cr) = find(results, |k| matches!(k, CaseKind::Messages { size: 64 })) {
        line(
            "64 B messages/s ≥ 0.8× the two-thread floor's",
            ratios(
                &rounds(cr, msg, "value"),
                &rounds(cr, Target::Floor, "value"),
            ),
            Some(0.8),
            true,
        );
        line(
            "zero-copy 64 B messages: svshm-zc ≥ iceoryx2-zc",
            ratios(&rounds(cr, zc, "value"), &rounds(cr, ice_zc, "value")),
            Some(1.0),
            true,
        );
    }
    out
}

/// The targets as markdown tables: [`checks`], then the absolute targets.
pub fn targets(results: &[CaseResult], mem: &[crate::bench::JsonLine]) -> String {
    let mut s = String::from(
        "| target | ratio of medians | median of per-round ratios | verdict |\n|---|---:|---:|---|\n",
    );
    for c in checks(results) {
        let _ = match c.got {
            Some((m, p, n)) => writeln!(
                s,
                "| {} | {m:.2}× | {p:.2}× ({n} rounds) | {} |",
                c.what,
                c.verdict()
            ),
            None => writeln!(s, "| {} | — | — | not measured |", c.what),
        };
    }
    let _ = writeln!(
        s,
        "\n| target (absolute) | median | min … max over runs | verdict |\n|---|---:|---:|---|"
    );
    if let Some(cr) = find(results, |k| matches!(k, CaseKind::Messages { size: 64 })) {
        let msg = Target::Transport(Kind::SvshmMsg);
        let v: Vec<f64> = rounds(cr, msg, "value").values().copied().collect();
        if !v.is_empty() {
            let m = median(&v);
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let _ = writeln!(
                s,
                "| 64 B messages ≥ 10 M/s (svshm-msg) | {:.2} M/s | {:.2} … {:.2} M/s | {} |",
                m / 1e6,
                lo / 1e6,
                hi / 1e6,
                if m >= 10e6 { "MET" } else { "MISSED" }
            );
        }
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
    if let Some(w) = worst {
        let _ = writeln!(
            s,
            "| endpoint RSS < 16 MiB beyond the ring (worst svshm process) | {:.1} MiB | — | {} |",
            w / 1024.0,
            if w < 16.0 * 1024.0 { "MET" } else { "MISSED" }
        );
    }
    s
}

/// The peak-RSS table (from the `memory` JSON lines), with its heading; empty
/// if there are none.
pub fn memory(lines: &[crate::bench::JsonLine]) -> String {
    let mut s = String::new();
    let mem: Vec<&crate::bench::JsonLine> =
        lines.iter().filter(|l| l.workload == "memory").collect();
    if mem.is_empty() {
        return s;
    }
    s.push_str("\n### peak RSS of one endpoint process (max over stream and message runs)\n\n");
    s.push_str("| transport | KiB | what |\n|---|---:|---|\n");
    for m in &mem {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} |",
            m.transport,
            m.value,
            m.parameters["stat"].as_str().unwrap_or("")
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(got: Option<(f64, f64, usize)>, limit: Option<f64>, higher: bool) -> Check {
        Check {
            what: String::new(),
            got,
            limit,
            higher,
        }
    }

    #[test]
    fn a_target_is_met_only_if_both_ratios_meet_it() {
        assert_eq!(check(Some((1.2, 1.1, 3)), Some(1.0), true).verdict(), "MET");
        assert_eq!(
            check(Some((1.2, 0.9, 3)), Some(1.0), true).verdict(),
            "MISSED"
        );
        assert_eq!(
            check(Some((1.05, 1.1, 3)), Some(1.1), false).verdict(),
            "MET"
        );
        assert_eq!(
            check(Some((1.05, 1.2, 3)), Some(1.1), false).verdict(),
            "MISSED"
        );
        assert_eq!(check(Some((2.0, 2.0, 3)), None, true).verdict(), "bound");
        assert_eq!(check(None, Some(1.0), true).verdict(), "not measured");
    }
}
