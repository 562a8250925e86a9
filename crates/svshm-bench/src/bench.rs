//! The session: which runs, in which order, how big, and what they gave.
//!
//! Every (case, target) pair is first sized by one calibration run (which is
//! also its warm-up and is discarded) so that a measured run takes about
//! `seconds`; then the pairs are run `runs` times, rotating the order of the
//! targets each round so that drift on a shared machine hits all of them alike.
//! Values are medians over the rounds.

use crate::driver::{Ctx, Outcome, Target, run_once};
use crate::roles::Workload;
use crate::stats::{LATENCY_STATS, Latency, median};
use crate::transport::{Kind, Wait};
use crate::util::fmt_size;
use serde::Serialize;
use std::time::Instant;

/// What a case measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CaseKind {
    /// Byte stream with `chunk`-byte writes and reads.
    Stream {
        /// Bytes per write/read.
        chunk: usize,
    },
    /// Round trips of `size` bytes.
    PingPong {
        /// Payload bytes.
        size: usize,
        /// Spin or block.
        wait: Wait,
    },
    /// One-way messages of `size` bytes.
    Messages {
        /// Payload bytes.
        size: usize,
    },
}

impl CaseKind {
    /// Workload name in tables and JSON.
    pub fn workload(&self) -> &'static str {
        match self {
            CaseKind::Stream { .. } => "stream",
            CaseKind::PingPong { .. } => "pingpong",
            CaseKind::Messages { .. } => "messages",
        }
    }

    /// A one-line title.
    pub fn title(&self) -> String {
        match *self {
            CaseKind::Stream { chunk } => format!("stream, {} chunks", fmt_size(chunk as u64)),
            CaseKind::PingPong { size, wait } => {
                format!("ping-pong, {size} B, {} wait", wait.name())
            }
            CaseKind::Messages { size } => format!("messages, {size} B, one way"),
        }
    }

    /// Whether the floor has a counterpart of this case.
    pub fn has_floor(&self) -> bool {
        !matches!(
            self,
            CaseKind::PingPong {
                wait: Wait::Adaptive,
                ..
            }
        )
    }

    fn calibration_size(&self) -> u64 {
        match *self {
            // 32 MiB, but at least 8 chunks and at most 200 000 of them (tiny
            // chunks through a kernel pipe take about a microsecond each).
            CaseKind::Stream { chunk } => (32u64 << 20)
                .max(8 * chunk as u64)
                .min(200_000 * chunk as u64),
            CaseKind::PingPong {
                wait: Wait::Spin, ..
            } => 20_000,
            CaseKind::PingPong { .. } => 2_000,
            // At most 256 MiB of payload, so that large messages calibrate
            // as quickly as small ones.
            CaseKind::Messages { size } => (256u64 << 20)
                .checked_div(size as u64)
                .unwrap_or(0)
                .clamp(16, 200_000),
        }
    }

    fn max_size(&self) -> u64 {
        match *self {
            CaseKind::Stream { .. } => 64u64 << 30,
            CaseKind::PingPong { .. } => 2_000_000,
            CaseKind::Messages { .. } => 200_000_000,
        }
    }

    /// The workload for a sizing (bytes, round trips or messages).
    pub fn workload_for(&self, sizing: u64) -> Workload {
        match *self {
            CaseKind::Stream { chunk } => {
                let c = chunk as u64;
                Workload::Stream {
                    chunk,
                    bytes: (sizing / c).max(1) * c,
                }
            }
            CaseKind::PingPong { size, .. } => Workload::PingPong {
                size,
                iters: sizing,
                warmup: (sizing / 10).clamp(100, 10_000),
            },
            CaseKind::Messages { size } => Workload::Messages {
                size,
                count: sizing,
            },
        }
    }

    /// Whether bigger values are better (throughput) or smaller (latency).
    pub fn higher_is_better(&self) -> bool {
        !matches!(self, CaseKind::PingPong { .. })
    }

    /// The unit of the case's values.
    pub fn unit(&self) -> &'static str {
        match self {
            CaseKind::Stream { .. } => "GB/s",
            CaseKind::PingPong { .. } => "ns",
            CaseKind::Messages { .. } => "msgs/s",
        }
    }
}

/// One case of a session, optionally with a fixed size instead of calibration.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// What it measures.
    pub kind: CaseKind,
    /// Fixed bytes / round trips / messages (None: calibrate to `seconds`).
    pub fixed: Option<u64>,
}

/// A whole session.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The cases, in order.
    pub cases: Vec<Case>,
    /// The transports.
    pub kinds: Vec<Kind>,
    /// Whether to measure the floor where it applies.
    pub floor: bool,
    /// Measured runs per (case, target).
    pub runs: usize,
    /// Target duration of one measured run when calibrating.
    pub seconds: f64,
    /// Wait mode for stream and message cases (None: each transport's default).
    pub wait: Option<Wait>,
}

/// Measurements of one target in one case.
#[derive(Debug, Clone)]
pub struct Series {
    /// Which target.
    pub target: Target,
    /// Wait mode used.
    pub wait: Option<Wait>,
    /// The measured workload.
    pub workload: Workload,
    /// One outcome per measured run.
    pub outcomes: Vec<Outcome>,
    /// The round (0-based) of each outcome.
    pub rounds: Vec<usize>,
    /// Why it failed, if it did (calibration failed: no measured runs).
    pub error: Option<String>,
    /// Measured runs that failed (reported, not retried, not in the median).
    pub failures: Vec<String>,
}

impl Series {
    /// The per-run values of a statistic (`value` for throughput cases).
    pub fn values(&self, case: &CaseKind, stat: &str) -> Vec<f64> {
        self.outcomes
            .iter()
            .map(|o| match (case, self.workload) {
                (CaseKind::Stream { .. }, Workload::Stream { bytes, .. }) => {
                    bytes as f64 / o.seconds / 1e9
                }
                (CaseKind::Messages { .. }, Workload::Messages { count, .. }) => {
                    count as f64 / o.seconds
                }
                _ => o.latency.map(|l| l.get(stat)).unwrap_or(f64::NAN),
            })
            .collect()
    }

    /// A statistic by round (rounds whose run failed are absent).
    pub fn by_round(&self, case: &CaseKind, stat: &str) -> std::collections::BTreeMap<usize, f64> {
        self.rounds
            .iter()
            .copied()
            .zip(self.values(case, stat))
            .collect()
    }

    /// Median of a statistic over the runs.
    pub fn median(&self, case: &CaseKind, stat: &str) -> Option<f64> {
        let v = self.values(case, stat);
        (!v.is_empty()).then(|| median(&v))
    }

    /// Median over the runs of the CPU both endpoints kept busy, in cores
    /// (2.0: two cores spinning flat out; near 0: both mostly asleep).
    pub fn cpu_busy(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .outcomes
            .iter()
            .map(|o| o.cpu_busy.iter().sum::<f64>())
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        (!v.is_empty()).then(|| median(&v))
    }

    /// Median over the runs of the CPU time both endpoints used per unit of
    /// work (round trip, message or chunk, warm-up round trips included), in
    /// nanoseconds: what one round trip costs in CPU, awake or spinning.
    pub fn cpu_per_unit(&self) -> Option<f64> {
        let units = match self.workload {
            Workload::PingPong { iters, warmup, .. } => iters + warmup,
            Workload::Messages { count, .. } => count,
            Workload::Stream { chunk, bytes } => bytes / chunk.max(1) as u64,
        };
        let v: Vec<f64> = self
            .outcomes
            .iter()
            .map(|o| o.cpu_ns.iter().sum::<u64>() as f64 / units.max(1) as f64)
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        (!v.is_empty()).then(|| median(&v))
    }

    /// Median latency summary over the runs (each statistic separately).
    pub fn median_latency(&self, case: &CaseKind) -> Option<Latency> {
        if self.outcomes.is_empty() || !matches!(case, CaseKind::PingPong { .. }) {
            return None;
        }
        let m = |s: &str| self.median(case, s).unwrap_or(f64::NAN) as u64;
        Some(Latency {
            n: self.outcomes[0].latency.map(|l| l.n).unwrap_or(0),
            min: m("min"),
            p50: m("p50"),
            p99: m("p99"),
            p999: m("p99.9"),
            max: m("max"),
            mean: self.median(case, "mean").unwrap_or(f64::NAN),
        })
    }
}

/// All measurements of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub kind: CaseKind,
    /// One series per target, in plan order (floor last).
    pub series: Vec<Series>,
}

impl CaseResult {
    /// The series of a target.
    pub fn get(&self, t: Target) -> Option<&Series> {
        self.series
            .iter()
            .find(|s| s.target == t && s.error.is_none() && !s.outcomes.is_empty())
    }

    /// Best peer (not svshm, not floor) value of a statistic, and who.
    pub fn best_peer(&self, stat: &str) -> Option<(Target, f64)> {
        let hib = self.kind.higher_is_better();
        self.series
            .iter()
            .filter(|s| {
                matches!(s.target, Target::Transport(k) if k.is_peer()) && s.error.is_none()
            })
            .filter_map(|s| s.median(&self.kind, stat).map(|v| (s.target, v)))
            .filter(|(_, v)| v.is_finite())
            .reduce(|a, b| {
                if (b.1 > a.1) == hib && b.1 != a.1 {
                    b
                } else {
                    a
                }
            })
    }

    /// Floor value of a statistic.
    pub fn floor(&self, stat: &str) -> Option<f64> {
        self.get(Target::Floor)
            .and_then(|s| s.median(&self.kind, stat))
    }
}

fn wait_for(case: &CaseKind, target: Target, plan: &Plan) -> Wait {
    match (case, target) {
        (CaseKind::PingPong { wait, .. }, _) => *wait,
        (_, Target::Floor | Target::FramedFloor) => Wait::Spin,
        (_, Target::Transport(k)) => plan.wait.unwrap_or(k.default_wait()),
    }
}

/// Runs the plan; progress goes to stderr.
pub fn run_plan(plan: &Plan, ctx: &Ctx) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for case in &plan.cases {
        let mut targets: Vec<Target> = plan.kinds.iter().map(|&k| Target::Transport(k)).collect();
        if plan.floor && case.kind.has_floor() {
            targets.push(Target::Floor);
        }
        if plan.floor
            && matches!(
                case.kind,
                CaseKind::PingPong {
                    wait: Wait::Spin,
                    ..
                }
            )
        {
            targets.push(Target::FramedFloor);
        }
        eprintln!("== {}", case.kind.title());
        // Size each target (calibration run = warm-up, discarded).
        let mut series: Vec<Series> = targets
            .iter()
            .map(|&t| {
                let wait = wait_for(&case.kind, t, plan);
                let sizing = match case.fixed {
                    Some(n) => Ok(n),
                    None => calibrate(&case.kind, t, wait, plan.seconds, ctx),
                };
                match sizing {
                    Ok(n) => Series {
                        target: t,
                        wait: Some(wait),
                        workload: case.kind.workload_for(n),
                        outcomes: Vec::new(),
                        rounds: Vec::new(),
                        failures: Vec::new(),
                        error: None,
                    },
                    Err(e) => {
                        eprintln!("   {:<13} calibration failed: {e:#}", t.name());
                        Series {
                            target: t,
                            wait: Some(wait),
                            workload: case.kind.workload_for(1),
                            outcomes: Vec::new(),
                            rounds: Vec::new(),
                            failures: Vec::new(),
                            error: Some(format!("{e:#}")),
                        }
                    }
                }
            })
            .collect();
        for round in 0..plan.runs {
            let n = series.len();
            // Rotate the order each round, and reverse it every other round.
            let mut order: Vec<usize> = (0..n).map(|i| (i + round) % n).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let s = &mut series[i];
                if s.error.is_some() {
                    continue;
                }
                let t0 = Instant::now();
                match run_once(s.target, s.workload, s.wait.unwrap_or(Wait::Spin), ctx) {
                    Ok(o) => {
                        s.outcomes.push(o);
                        s.rounds.push(round);
                        let v = s.values(&case.kind, "p50");
                        eprintln!(
                            "   round {} {:<13} {:>12.3} {}  ({:.2}s)",
                            round + 1,
                            s.target.name(),
                            v.last().copied().unwrap_or(f64::NAN),
                            if case.kind.higher_is_better() {
                                case.kind.unit()
                            } else {
                                "ns p50"
                            },
                            t0.elapsed().as_secs_f64()
                        );
                    }
                    Err(e) => {
                        eprintln!(
                            "   round {} {:<13} FAILED: {e:#}",
                            round + 1,
                            s.target.name()
                        );
                        s.failures.push(format!("round {}: {e:#}", round + 1));
                    }
                }
            }
        }
        results.push(CaseResult {
            kind: case.kind,
            series,
        });
    }
    results
}

fn calibrate(
    case: &CaseKind,
    t: Target,
    wait: Wait,
    seconds: f64,
    ctx: &Ctx,
) -> anyhow::Result<u64> {
    let n0 = case.calibration_size();
    let o = run_once(t, case.workload_for(n0), wait, ctx)?;
    let secs = o.seconds.max(1e-6);
    let n = (n0 as f64 * seconds / secs) as u64;
    Ok(n.clamp(n0.min(case.max_size()), case.max_size()))
}

/// One result line of `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct JsonLine {
    /// Transport name (or `floor`).
    pub transport: String,
    /// `stream`, `pingpong`, `messages` or `memory`.
    pub workload: String,
    /// Sizes, wait mode, statistic.
    pub parameters: serde_json::Value,
    /// The median value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// Every measured run's value.
    pub runs: Vec<f64>,
    /// value / best peer's value (same statistic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_best_peer: Option<f64>,
    /// value / floor's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_floor: Option<f64>,
    /// CPU both endpoints kept busy (cores; median over the runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_busy: Option<f64>,
    /// CPU time both endpoints used per round trip / message / chunk, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ns_per_unit: Option<f64>,
    /// Why the series failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Measured runs that failed (not in `runs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// Flattens results into JSON lines.
pub fn json_lines(results: &[CaseResult], ctx: &Ctx) -> Vec<JsonLine> {
    let mut out = Vec::new();
    for cr in results {
        let stats: Vec<&str> = if cr.kind.higher_is_better() {
            vec!["value"]
        } else {
            LATENCY_STATS.to_vec()
        };
        for s in &cr.series {
            for &stat in &stats {
                let mut p = match s.workload {
                    Workload::Stream { chunk, bytes } => {
                        serde_json::json!({"chunk": chunk, "bytes": bytes})
                    }
                    Workload::PingPong {
                        size,
                        iters,
                        warmup,
                    } => {
                        serde_json::json!({"size": size, "iters": iters, "warmup": warmup, "stat": stat})
                    }
                    Workload::Messages { size, count } => {
                        serde_json::json!({"size": size, "count": count})
                    }
                };
                if let Some(w) = s.wait {
                    p["wait"] = serde_json::json!(w.name());
                }
                p["ring"] = serde_json::json!(ctx.ring_for(s.workload.payload()));
                let runs = s.values(&cr.kind, stat);
                let value = if runs.is_empty() {
                    f64::NAN
                } else {
                    median(&runs)
                };
                let bp = cr.best_peer(stat).map(|(_, v)| value / v);
                let fl = cr.floor(stat).map(|f| value / f);
                out.push(JsonLine {
                    transport: s.target.name().to_string(),
                    workload: cr.kind.workload().to_string(),
                    parameters: p,
                    value,
                    unit: cr.kind.unit().to_string(),
                    runs,
                    vs_best_peer: bp.filter(|v| v.is_finite()),
                    vs_floor: fl.filter(|v| v.is_finite()),
                    cpu_busy: s.cpu_busy(),
                    cpu_ns_per_unit: s.cpu_per_unit(),
                    error: s.error.clone(),
                    failures: s.failures.clone(),
                });
            }
        }
    }
    // Peak RSS per transport beyond the rings it maps.
    for k in Kind::ALL {
        let mut worst: Option<(f64, u64)> = None;
        // Ping-pong runs are left out: the ping process keeps every round-trip
        // time (8 bytes each, up to 16 MB), which is the bench's memory, not the
        // transport's. Stream and message runs hold at most two payload buffers.
        for cr in results
            .iter()
            .filter(|c| !matches!(c.kind, CaseKind::PingPong { .. }))
        {
            for s in cr
                .series
                .iter()
                .filter(|s| s.target == Target::Transport(k))
            {
                let rings = usize::from(k.is_svshm());
                for o in &s.outcomes {
                    for &r in &o.rss_peak_kib {
                        let ring = ctx.ring_for(s.workload.payload());
                        let beyond = r as f64 - (rings * ring / 1024) as f64;
                        if worst.is_none_or(|(w, _)| beyond > w) {
                            worst = Some((beyond, r));
                        }
                    }
                }
            }
        }
        if let Some((beyond, peak)) = worst {
            out.push(JsonLine {
                transport: k.name().to_string(),
                workload: "memory".into(),
                parameters: serde_json::json!({
                    "stat": if k.is_svshm() { "peak RSS beyond the rings" } else { "peak RSS" },
                    "peak_rss_kib": peak,
                    "ring": ctx.ring,
                }),
                value: beyond,
                unit: "KiB".into(),
                runs: Vec::new(),
                vs_best_peer: None,
                vs_floor: None,
                cpu_busy: None,
                cpu_ns_per_unit: None,
                error: None,
                failures: Vec::new(),
            });
        }
    }
    out
}
