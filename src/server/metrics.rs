//! Request counters and latency histograms, exposed in the Prometheus text format.
//!
//! Labels are the route name and status code only: never a path, prefix or hash.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::format::Header;
use crate::hash::HashKind;

use super::indexes::IndexSet;
use super::{ReadEngine, Route};
use crate::format::now_unix;

/// Status codes counted individually; anything else is counted as `other`.
const STATUSES: [u16; 9] = [200, 204, 304, 400, 404, 405, 500, 503, 0];

/// Slot of `engine` in `Metrics::window_reads` (`Auto` never reads: it resolves to one of the
/// others).
fn engine_slot(engine: ReadEngine) -> usize {
    match engine {
        ReadEngine::IoUring | ReadEngine::Auto => 0,
        ReadEngine::Threads => 1,
    }
}

/// Upper bounds of the latency histogram buckets, in microseconds.
const BUCKETS_US: [u64; 14] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// One route's counters.
#[derive(Default)]
struct RouteMetrics {
    /// Requests by status, indexed like [`STATUSES`].
    by_status: [AtomicU64; STATUSES.len()],
    /// Requests by latency bucket (not cumulative; the last slot is `+Inf`).
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    /// Sum of latencies, in nanoseconds.
    latency_sum_ns: AtomicU64,
}

/// Server-wide counters, updated with relaxed atomics on every request.
#[derive(Default)]
pub struct Metrics {
    /// Per-route counters, indexed by [`Route::index`].
    routes: [RouteMetrics; Route::ALL.len()],
    /// Connections accepted since start.
    connections_accepted: AtomicU64,
    /// Connections currently open.
    connections_open: AtomicU64,
    /// Handler panics caught (each answered 500).
    panics: AtomicU64,
    /// Connections closed or refused by the server, by [`CloseReason`].
    closed: [AtomicU64; CloseReason::ALL.len()],
    /// Bytes of rendered response bodies not yet sent, across all connections.
    unsent_body_bytes: AtomicU64,
    /// Reads of cold index windows into a buffer, by engine: io_uring, then the blocking pool.
    window_reads: [AtomicU64; 2],
}

/// Why the server closed (or refused) a connection; a label of
/// `hibp_mirror_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No complete request head (or protocol preface) within the header timeout; also hyper's
    /// own header timeout.
    HeadTimeout,
    /// A request head hyper refused as too large (hyper answered 431).
    HeadTooLarge,
    /// A request hyper could not parse (hyper answered 400).
    BadRequest,
    /// No request and nothing to send for the header timeout after the last activity.
    Idle,
    /// Nothing sent for the send timeout while output was waiting (the peer reads nothing, or
    /// an HTTP/2 peer grants no flow-control window).
    SendStalled,
    /// An HTTP/2 keep-alive ping went unanswered.
    PingTimeout,
    /// The connection reached its maximum age.
    MaxAge,
    /// Refused at accept: the client address already has its maximum of connections.
    PerIpLimit,
}

impl CloseReason {
    /// Every reason, in metric order.
    pub const ALL: [CloseReason; 8] = [
        CloseReason::HeadTimeout,
        CloseReason::HeadTooLarge,
        CloseReason::BadRequest,
        CloseReason::Idle,
        CloseReason::SendStalled,
        CloseReason::PingTimeout,
        CloseReason::MaxAge,
        CloseReason::PerIpLimit,
    ];

    /// Label value in `/metrics`.
    pub const fn name(self) -> &'static str {
        match self {
            CloseReason::HeadTimeout => "head_timeout",
            CloseReason::HeadTooLarge => "head_too_large",
            CloseReason::BadRequest => "bad_request",
            CloseReason::Idle => "idle",
            CloseReason::SendStalled => "send_stalled",
            CloseReason::PingTimeout => "ping_timeout",
            CloseReason::MaxAge => "max_age",
            CloseReason::PerIpLimit => "per_ip_limit",
        }
    }
}

impl Metrics {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one answered request: its route, status and the time taken to build the response.
    #[inline]
    pub fn observe(&self, route: Route, status: u16, latency: Duration) {
        let m = &self.routes[route.index()];
        let status_at = STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(STATUSES.len() - 1);
        m.by_status[status_at].fetch_add(1, Ordering::Relaxed);
        let us = latency.as_micros() as u64;
        let bucket = BUCKETS_US.partition_point(|&b| b < us);
        m.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        m.latency_sum_ns
            .fetch_add(latency.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Counts a handler panic.
    pub fn panic_caught(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection opening.
    pub fn connection_opened(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closing.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections currently open.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Counts a connection closed or refused by the server for `reason`.
    pub fn connection_closed_for(&self, reason: CloseReason) {
        self.closed[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed or refused for `reason` so far.
    pub fn closed_for(&self, reason: CloseReason) -> u64 {
        self.closed[reason as usize].load(Ordering::Relaxed)
    }

    /// The counter of rendered-but-unsent body bytes (shared by every connection).
    pub(crate) fn unsent_body_bytes(&self) -> &AtomicU64 {
        &self.unsent_body_bytes
    }

    /// Counts a read of a cold index window into a buffer done by `engine` (`IoUring`, or
    /// `Threads` for direct reads on the blocking pool; faults through the mapping are not
    /// counted).
    pub fn window_read(&self, engine: ReadEngine) {
        self.window_reads[engine_slot(engine)].fetch_add(1, Ordering::Relaxed);
    }

    /// Window reads done by `engine` (`IoUring` or `Threads`) so far.
    pub fn window_reads(&self, engine: ReadEngine) -> u64 {
        self.window_reads[engine_slot(engine)].load(Ordering::Relaxed)
    }

    /// Requests answered on `route` with `status` so far.
    pub fn requests(&self, route: Route, status: u16) -> u64 {
        STATUSES.iter().position(|&s| s == status).map_or(0, |i| {
            self.routes[route.index()].by_status[i].load(Ordering::Relaxed)
        })
    }

    /// The Prometheus text exposition of these counters and of `indexes`.
    pub fn render(&self, indexes: &IndexSet) -> String {
        let mut out = String::with_capacity(8 * 1024);
        metric_header(
            &mut out,
            "hibp_mirror_requests_total",
            "Requests answered, by route and status.",
            MetricType::Counter,
        );
        for route in Route::ALL {
            let m = &self.routes[route.index()];
            for (i, &status) in STATUSES.iter().enumerate() {
                let n = m.by_status[i].load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let status = if status == 0 {
                    "other".to_owned()
                } else {
                    status.to_string()
                };
                let _ = writeln!(
                    out,
                    "hibp_mirror_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    route.name()
                );
            }
        }
        metric_header(
            &mut out,
            "hibp_mirror_request_duration_seconds",
            "Time to build a response, by route.",
            MetricType::Histogram,
        );
        for route in Route::ALL {
            let m = &self.routes[route.index()];
            let name = route.name();
            let mut cumulative = 0u64;
            for (i, bound) in BUCKETS_US.iter().enumerate() {
                cumulative += m.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "hibp_mirror_request_duration_seconds_bucket{{route=\"{name}\",le=\"{}\"}} {cumulative}",
                    *bound as f64 / 1e6
                );
            }
            cumulative += m.buckets[BUCKETS_US.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "hibp_mirror_request_duration_seconds_bucket{{route=\"{name}\",le=\"+Inf\"}} {cumulative}"
            );
            let sum = m.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "hibp_mirror_request_duration_seconds_sum{{route=\"{name}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "hibp_mirror_request_duration_seconds_count{{route=\"{name}\"}} {cumulative}"
            );
        }
        metric_header(
            &mut out,
            "hibp_mirror_connections_open",
            "Connections currently open.",
            MetricType::Gauge,
        );
        let _ = writeln!(
            out,
            "hibp_mirror_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        metric_header(
            &mut out,
            "hibp_mirror_connections_total",
            "Connections accepted since start.",
            MetricType::Counter,
        );
        let _ = writeln!(
            out,
            "hibp_mirror_connections_total {}",
            self.connections_accepted.load(Ordering::Relaxed)
        );
        metric_header(
            &mut out,
            "hibp_mirror_handler_panics_total",
            "Handler panics caught and answered with 500.",
            MetricType::Counter,
        );
        let _ = writeln!(
            out,
            "hibp_mirror_handler_panics_total {}",
            self.panics.load(Ordering::Relaxed)
        );

        metric_header(
            &mut out,
            "hibp_mirror_connections_closed_total",
            "Connections closed or refused by the server, by reason.",
            MetricType::Counter,
        );
        for reason in CloseReason::ALL {
            let _ = writeln!(
                out,
                "hibp_mirror_connections_closed_total{{reason=\"{}\"}} {}",
                reason.name(),
                self.closed_for(reason)
            );
        }
        metric_header(
            &mut out,
            "hibp_mirror_unsent_body_bytes",
            "Bytes of rendered response bodies not yet sent.",
            MetricType::Gauge,
        );
        let _ = writeln!(
            out,
            "hibp_mirror_unsent_body_bytes {}",
            self.unsent_body_bytes.load(Ordering::Relaxed)
        );

        metric_header(
            &mut out,
            "hibp_mirror_window_reads_total",
            "Cold index windows read into a buffer (io_uring, or direct reads on the blocking pool), by engine.",
            MetricType::Counter,
        );
        for (engine, label) in [
            (ReadEngine::IoUring, "io_uring"),
            (ReadEngine::Threads, "threads"),
        ] {
            let _ = writeln!(
                out,
                "hibp_mirror_window_reads_total{{engine=\"{label}\"}} {}",
                self.window_reads(engine)
            );
        }

        let kinds = [HashKind::Sha1, HashKind::Ntlm];
        let served: Vec<_> = kinds.iter().map(|&k| (k, indexes.get(k))).collect();
        // One gauge per header figure, each with a sample per served kind.
        let gauges: [HeaderGauge; 3] = [
            (
                "hibp_mirror_index_records",
                "Hashes in the served index.",
                |h| h.record_count,
            ),
            (
                "hibp_mirror_index_build_time_seconds",
                "Build time of the served index, Unix seconds.",
                |h| h.build_time,
            ),
            (
                "hibp_mirror_index_age_seconds",
                "Seconds since the served index was built.",
                |h| now_unix().saturating_sub(h.build_time),
            ),
        ];
        for (name, help, value) in gauges {
            metric_header(&mut out, name, help, MetricType::Gauge);
            for (kind, served) in &served {
                if let Some(served) = served {
                    let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {}", value(served.header()));
                }
            }
        }
        metric_header(
            &mut out,
            "hibp_mirror_index_reloads_total",
            "Index reloads, by kind and result.",
            MetricType::Counter,
        );
        for kind in kinds {
            let (ok, failed) = indexes.reload_counts(kind);
            let _ = writeln!(
                out,
                "hibp_mirror_index_reloads_total{{kind=\"{kind}\",result=\"ok\"}} {ok}"
            );
            let _ = writeln!(
                out,
                "hibp_mirror_index_reloads_total{{kind=\"{kind}\",result=\"error\"}} {failed}"
            );
        }
        out
    }
}

/// A per-kind gauge read off the index header: name, help text, value.
type HeaderGauge = (&'static str, &'static str, fn(&Header) -> u64);

/// The Prometheus metric types this exposition uses.
#[derive(Clone, Copy)]
enum MetricType {
    /// Only goes up (resets at restart).
    Counter,
    /// A current value.
    Gauge,
    /// Cumulative buckets with `_sum` and `_count`.
    Histogram,
}

impl MetricType {
    /// The name in a `# TYPE` line.
    fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// Writes the `# HELP` and `# TYPE` lines that precede every metric family.
fn metric_header(out: &mut String, name: &str, help: &str, kind: MetricType) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.name());
}
