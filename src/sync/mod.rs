//! `sync`: mirror every `/range/{PREFIX}` of an upstream that speaks the range protocol (the public
//! Pwned Passwords API or another hibp-mirror) into a state directory, then build an index from it.
//!
//! The fetch is resumable and incremental: each prefix's body and ETag are kept in a
//! [`state::StateDir`]; a later run sends `If-None-Match` and only changed prefixes cost a body.
//! Every body is validated ([`body`]) before it is stored, and the index is built
//! ([`build::build_index`]) only from stored, validated bodies.

pub mod body;
pub mod build;
pub mod state;

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use indicatif::ProgressBar;
use rand::Rng;
use reqwest::header::{
    HeaderMap, ACCEPT_ENCODING, CONTENT_ENCODING, ETAG, IF_NONE_MATCH, RETRY_AFTER,
};
use reqwest::StatusCode;
use tokio::sync::watch;

use crate::hash::{HashKind, Prefix, PREFIX_COUNT};
use state::{StateDir, StateError};

/// The public Pwned Passwords range API.
pub const DEFAULT_UPSTREAM: &str = "https://api.pwnedpasswords.com";

/// Requests in flight at once by default: enough to hide round trips to a distant upstream.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Tries per prefix before it is reported as failed.
pub const DEFAULT_MAX_TRIES: u32 = 8;

/// Time limit for one request, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Time limit for establishing a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// First retry delay; doubled on each further try, with jitter.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(500);

/// Longest delay between two tries computed by backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Largest response body accepted per range, as received (compressed when gzip was used). A real
/// range is ~40 KB gzipped; anything near this is a broken or hostile upstream.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 2 * 1024 * 1024;

/// Largest range body accepted after decompression. A real range is ~90 KB of text.
pub const DEFAULT_MAX_RANGE_BYTES: u64 = 4 * 1024 * 1024;

/// The User-Agent sent upstream (the public API refuses requests without one).
pub const USER_AGENT: &str = concat!("hibp-mirror/", env!("CARGO_PKG_VERSION"));

/// Every prefix, `00000` to `FFFFF`.
pub const ALL_PREFIXES: RangeInclusive<u32> = 0..=(PREFIX_COUNT as u32 - 1);

/// Checked settings of a sync run.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Base URL of the upstream; `/range/{PREFIX}` is appended.
    pub upstream: String,
    /// Which corpus to mirror (NTLM adds `?mode=ntlm`).
    pub kind: HashKind,
    /// Prefixes to fetch ([`ALL_PREFIXES`] except in tests and partial mirrors).
    pub prefixes: RangeInclusive<u32>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Tries per prefix before giving up on it.
    pub max_tries: u32,
    /// Time limit for one request.
    pub timeout: Duration,
    /// First retry delay (doubled per try).
    pub retry_base: Duration,
    /// Largest body accepted per range as received; a larger one fails that prefix. Bodies are
    /// read chunk by chunk and refused as soon as they pass it, so an endless body costs at most
    /// this much memory per request in flight.
    pub max_body_bytes: u64,
    /// Largest body accepted per range after decompression (a gzip bomb stops here).
    pub max_range_bytes: u64,
}

impl SyncOptions {
    /// Default settings for mirroring `kind` from `upstream`.
    pub fn new(upstream: impl Into<String>, kind: HashKind) -> SyncOptions {
        SyncOptions {
            upstream: upstream.into(),
            kind,
            prefixes: ALL_PREFIXES,
            concurrency: DEFAULT_CONCURRENCY,
            max_tries: DEFAULT_MAX_TRIES,
            timeout: DEFAULT_TIMEOUT,
            retry_base: DEFAULT_RETRY_BASE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_range_bytes: DEFAULT_MAX_RANGE_BYTES,
        }
    }

    /// Whether every prefix is covered.
    pub fn is_full(&self) -> bool {
        self.prefixes == ALL_PREFIXES
    }

    /// The index label: source host and, for partial runs, the prefix range. Credentials in the
    /// URL are never included.
    pub fn label(&self) -> String {
        let host = reqwest::Url::parse(&self.upstream)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_owned(),
                })
            })
            .unwrap_or_else(|| "upstream".into());
        let mut label = format!("sync {} from {host}", self.kind);
        if !self.is_full() {
            label.push_str(&format!(
                " (partial: {}-{})",
                Prefix::new(*self.prefixes.start()).map_or(String::new(), |p| p.to_string()),
                Prefix::new(*self.prefixes.end()).map_or(String::new(), |p| p.to_string()),
            ));
        }
        label.truncate(crate::format::LABEL_MAX);
        label
    }
}

/// Why a sync run stopped before finishing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The upstream URL is not an http(s) URL.
    #[error("invalid upstream URL {url:?}: {reason}")]
    Upstream {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The state directory failed (disk full, permissions); the run stops at once.
    #[error(transparent)]
    State(#[from] StateError),
}

/// What a fetch run did.
#[derive(Debug, Clone, Default)]
pub struct FetchReport {
    /// Prefixes whose body was downloaded (new or changed).
    pub fetched: u64,
    /// Prefixes the upstream confirmed unchanged (304).
    pub not_modified: u64,
    /// Prefixes skipped because the interrupted run being resumed had already done them.
    pub resumed: u64,
    /// Prefixes given up on, with the last reason.
    pub failed: Vec<(Prefix, String)>,
    /// Retries made (all causes).
    pub retries: u64,
    /// Response body bytes received (as transferred, i.e. compressed when gzip was used).
    pub bytes: u64,
    /// Wall time of the fetch.
    pub elapsed: Duration,
    /// Whether the run was stopped (Ctrl-C) before every prefix was done.
    pub interrupted: bool,
}

impl FetchReport {
    /// Prefixes handled per second.
    pub fn rate(&self) -> f64 {
        let done = self.fetched + self.not_modified + self.resumed + self.failed.len() as u64;
        done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for FetchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fetched, {} not modified, {} already done by the resumed run, {} failed; \
             {} retries; {:.1} MB received in {:.1} s ({:.0} prefixes/s)",
            self.fetched,
            self.not_modified,
            self.resumed,
            self.failed.len(),
            self.retries,
            self.bytes as f64 / 1e6,
            self.elapsed.as_secs_f64(),
            self.rate(),
        )
    }
}

/// Shared by all workers of one run.
struct Ctx {
    /// The HTTP client (one connection pool for the run).
    client: reqwest::Client,
    /// The run's settings.
    opts: SyncOptions,
    /// `upstream` without a trailing slash.
    base: String,
    /// `base` with credentials and query values replaced by `***`: the only form messages show.
    shown_base: String,
    /// Credentials and query values of the upstream URL, scrubbed from every failure reason
    /// (an error from a lower layer could quote the URL).
    secrets: Vec<String>,
    /// Where bodies and ETags are kept.
    state: StateDir,
    /// Start of the interrupted run being resumed, if any.
    resume_since: Option<SystemTime>,
    /// Next prefix value to hand out.
    next: AtomicU32,
    /// Tells workers to stop (Ctrl-C or a state error).
    stop: watch::Sender<bool>,
    /// Progress display (hidden when not a terminal).
    progress: ProgressBar,
    /// Counters and failures, merged into the report at the end.
    fetched: AtomicU64,
    /// See [`FetchReport::not_modified`].
    not_modified: AtomicU64,
    /// See [`FetchReport::resumed`].
    resumed: AtomicU64,
    /// See [`FetchReport::retries`].
    retries: AtomicU64,
    /// See [`FetchReport::bytes`].
    bytes: AtomicU64,
    /// See [`FetchReport::failed`].
    failed: Mutex<Vec<(Prefix, String)>>,
    /// The first state error, which stops the run.
    fatal: Mutex<Option<StateError>>,
}

/// Result of one prefix.
enum Outcome {
    Fetched,
    NotModified,
    Resumed,
    Failed(String),
    Stopped,
}

/// Result of one failed try.
enum TryError {
    /// Worth another try, after `after` if the upstream said so.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Another try will not help (e.g. 404).
    GiveUp(String),
    /// The state directory failed: stop the run.
    State(StateError),
}

/// Fetches every prefix of `opts.prefixes` into `state`. Stops early (with `interrupted` set)
/// when `shutdown` completes. On a run that covered every prefix without failures, the resume
/// marker is cleared so the next run revalidates everything.
pub async fn fetch(
    opts: SyncOptions,
    state: StateDir,
    progress: ProgressBar,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<FetchReport, SyncError> {
    let started = Instant::now();
    let url = reqwest::Url::parse(&opts.upstream).map_err(|e| SyncError::Upstream {
        url: redact_url(&opts.upstream),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SyncError::Upstream {
            url: redact_url(&opts.upstream),
            reason: "only http and https are supported".into(),
        });
    }
    let secrets = url_secrets(&url);
    let client = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        // Bodies are stored compressed as received, so decompression is done here, not by reqwest.
        .no_gzip()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(opts.timeout)
        .pool_max_idle_per_host(opts.concurrency)
        .tcp_nodelay(true)
        .build()?;
    let resume_since = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.begin_run())
            .await
            .expect("begin_run does not panic")?
    };
    let (stop, _) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        client,
        base: opts.upstream.trim_end_matches('/').to_owned(),
        shown_base: redact_url(&opts.upstream).trim_end_matches('/').to_owned(),
        secrets,
        next: AtomicU32::new(*opts.prefixes.start()),
        opts,
        state,
        resume_since,
        stop,
        progress,
        fetched: AtomicU64::new(0),
        not_modified: AtomicU64::new(0),
        resumed: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        failed: Mutex::new(Vec::new()),
        fatal: Mutex::new(None),
    });
    let watcher = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            shutdown.await;
            ctx.stop.send_replace(true);
        })
    };
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..ctx.opts.concurrency.max(1) {
        workers.spawn(worker(ctx.clone()));
    }
    while workers.join_next().await.is_some() {}
    watcher.abort();
    ctx.progress.finish_and_clear();

    if let Some(e) = ctx.fatal.lock().expect("not poisoned").take() {
        return Err(e.into());
    }
    let interrupted = *ctx.stop.borrow();
    let mut failed = std::mem::take(&mut *ctx.failed.lock().expect("not poisoned"));
    failed.sort_by_key(|(p, _)| *p);
    let report = FetchReport {
        fetched: ctx.fetched.load(Ordering::Relaxed),
        not_modified: ctx.not_modified.load(Ordering::Relaxed),
        resumed: ctx.resumed.load(Ordering::Relaxed),
        failed,
        retries: ctx.retries.load(Ordering::Relaxed),
        bytes: ctx.bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        interrupted,
    };
    if !report.interrupted && report.failed.is_empty() {
        let state = ctx.state.clone();
        tokio::task::spawn_blocking(move || state.finish_run())
            .await
            .expect("finish_run does not panic")?;
    }
    Ok(report)
}

async fn worker(ctx: Arc<Ctx>) {
    let mut stop = ctx.stop.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        let value = ctx.next.fetch_add(1, Ordering::Relaxed);
        if value > *ctx.opts.prefixes.end() {
            // Keep the counter from wrapping past u32::MAX with many idle workers.
            ctx.next
                .store(ctx.opts.prefixes.end().saturating_add(1), Ordering::Relaxed);
            return;
        }
        let Some(prefix) = Prefix::new(value) else {
            return;
        };
        let outcome = tokio::select! {
            outcome = sync_prefix(&ctx, prefix) => outcome,
            _ = stop.wait_for(|stopped| *stopped) => Outcome::Stopped,
        };
        match outcome {
            Outcome::Fetched => ctx.fetched.fetch_add(1, Ordering::Relaxed),
            Outcome::NotModified => ctx.not_modified.fetch_add(1, Ordering::Relaxed),
            Outcome::Resumed => ctx.resumed.fetch_add(1, Ordering::Relaxed),
            Outcome::Failed(reason) => {
                ctx.failed
                    .lock()
                    .expect("not poisoned")
                    .push((prefix, ctx.scrub(reason)));
                0
            }
            Outcome::Stopped => return,
        };
        ctx.progress.inc(1);
    }
}

async fn sync_prefix(ctx: &Ctx, prefix: Prefix) -> Outcome {
    let state = ctx.state.clone();
    let meta = match tokio::task::spawn_blocking(move || state.read_meta(prefix)).await {
        Ok(Ok(meta)) => meta,
        Ok(Err(e)) => return ctx.fail_run(e),
        Err(e) => return Outcome::Failed(format!("internal error: {e}")),
    };
    if let (Some(since), Some(meta)) = (ctx.resume_since, &meta) {
        if meta.modified >= since {
            return Outcome::Resumed;
        }
    }
    let etag = meta.and_then(|m| m.etag);
    let mut last = String::new();
    for attempt in 1..=ctx.opts.max_tries.max(1) {
        let delay = match try_prefix(ctx, prefix, etag.as_deref()).await {
            Ok(outcome) => return outcome,
            Err(TryError::GiveUp(reason)) => return Outcome::Failed(reason),
            Err(TryError::State(e)) => return ctx.fail_run(e),
            Err(TryError::Retry { reason, after }) => {
                last = reason;
                after.unwrap_or_else(|| backoff(ctx.opts.retry_base, attempt))
            }
        };
        if attempt < ctx.opts.max_tries {
            ctx.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
    }
    Outcome::Failed(format!(
        "gave up after {} tries: {last}",
        ctx.opts.max_tries
    ))
}

impl Ctx {
    fn fail_run(&self, e: StateError) -> Outcome {
        self.fatal.lock().expect("not poisoned").get_or_insert(e);
        self.stop.send_replace(true);
        Outcome::Stopped
    }

    fn url(&self, prefix: Prefix) -> String {
        range_url(&self.base, self.opts.kind, prefix)
    }

    /// The URL of `prefix` as messages show it (credentials redacted).
    fn shown_url(&self, prefix: Prefix) -> String {
        range_url(&self.shown_base, self.opts.kind, prefix)
    }

    /// `text` with every credential of the upstream URL replaced by `***`.
    fn scrub(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }
}

fn range_url(base: &str, kind: HashKind, prefix: Prefix) -> String {
    match kind {
        HashKind::Sha1 => format!("{base}/range/{prefix}"),
        HashKind::Ntlm => format!("{base}/range/{prefix}?mode=ntlm"),
    }
}

/// `url` safe to print: user name, password and query values become `***`
/// (`http://user:s3cret@host/?token=t` -> `http://***@host/?token=***`). Text that does not
/// parse as a URL has everything between `://` and the last `@` of the authority replaced.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.cannot_be_a_base() => {
            let had_userinfo = !parsed.username().is_empty() || parsed.password().is_some();
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, _)| (k.into_owned(), "***".to_owned()))
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            let mut shown = parsed.to_string();
            if had_userinfo {
                if let Some(at) = shown.find("://") {
                    shown.insert_str(at + 3, "***@");
                }
            }
            shown
        }
        _ => {
            let Some(start) = url.find("://").map(|i| i + 3) else {
                return url.to_owned();
            };
            let authority_end = url[start..]
                .find(['/', '?', '#'])
                .map_or(url.len(), |i| start + i);
            match url[start..authority_end].rfind('@') {
                Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
                None => url.to_owned(),
            }
        }
    }
}

/// The parts of `url` that must never be printed: user name, password, query values (raw and
/// percent-decoded).
fn url_secrets(url: &reqwest::Url) -> Vec<String> {
    let mut secrets = vec![url.username().to_owned()];
    secrets.extend(url.password().map(str::to_owned));
    for (_, value) in url.query_pairs() {
        secrets.push(value.into_owned());
    }
    if let Some(query) = url.query() {
        secrets.extend(
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(_, v)| v.to_owned()),
        );
    }
    let decoded: Vec<String> = secrets
        .iter()
        .filter_map(|s| {
            let bytes: Vec<u8> = percent_decode(s);
            String::from_utf8(bytes).ok()
        })
        .collect();
    secrets.extend(decoded);
    // Short values ("a", "1") would scrub innocent text; such a secret is no secret anyway.
    secrets.retain(|s| s.len() >= 3);
    secrets.sort_unstable_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

impl Ctx {}

/// One request for `prefix`, and on a 200 the validation and storage of its body.
async fn try_prefix(ctx: &Ctx, prefix: Prefix, etag: Option<&str>) -> Result<Outcome, TryError> {
    let retry = |reason: String| TryError::Retry {
        reason,
        after: None,
    };
    let mut request = ctx
        .client
        .get(ctx.url(prefix))
        .header(ACCEPT_ENCODING, "gzip");
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let response = request.send().await.map_err(|e| retry(describe(&e)))?;
    let status = response.status();
    match status {
        StatusCode::OK => {}
        StatusCode::NOT_MODIFIED if etag.is_some() => {
            let state = ctx.state.clone();
            return match tokio::task::spawn_blocking(move || state.touch(prefix)).await {
                Ok(Ok(())) => Ok(Outcome::NotModified),
                Ok(Err(e)) => Err(TryError::State(e)),
                Err(e) => Err(TryError::GiveUp(format!("internal error: {e}"))),
            };
        }
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            return Err(TryError::Retry {
                reason: format!("HTTP {status}"),
                after: retry_after(response.headers()),
            })
        }
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            return Err(retry(format!("HTTP {status}")))
        }
        s => {
            return Err(TryError::GiveUp(format!(
                "HTTP {s} from {}",
                ctx.shown_url(prefix)
            )))
        }
    }
    let gzipped = match response
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| v.as_bytes())
    {
        None => false,
        Some(v) if v.eq_ignore_ascii_case(b"identity") => false,
        Some(v) if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") => true,
        Some(v) => {
            return Err(TryError::GiveUp(format!(
                "unsupported Content-Encoding {:?} (only gzip was asked for)",
                String::from_utf8_lossy(v)
            )))
        }
    };
    let new_etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let max_body = ctx.opts.max_body_bytes;
    let too_large = || {
        TryError::GiveUp(format!(
            "body larger than {max_body} bytes, refused (limit: --max-body-bytes)"
        ))
    };
    if response.content_length().is_some_and(|len| len > max_body) {
        return Err(too_large());
    }
    // Read chunk by chunk, so an endless body stops at the limit instead of filling memory.
    let mut response = response;
    let mut raw = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| retry(describe(&e)))? {
        ctx.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if (raw.len() + chunk.len()) as u64 > max_body {
            return Err(too_large());
        }
        raw.extend_from_slice(&chunk);
    }
    let raw = raw.freeze();
    let state = ctx.state.clone();
    let kind = ctx.opts.kind;
    let max_range = ctx.opts.max_range_bytes;
    tokio::task::spawn_blocking(move || {
        store(&state, kind, prefix, raw, gzipped, new_etag, max_range)
    })
    .await
    .map_err(|e| TryError::GiveUp(format!("internal error: {e}")))?
}

/// Validates a received body and stores it compressed (as received when it came gzipped).
fn store(
    state: &StateDir,
    kind: HashKind,
    prefix: Prefix,
    raw: Bytes,
    gzipped: bool,
    etag: Option<String>,
    max_range: u64,
) -> Result<Outcome, TryError> {
    let malformed = |reason: String| TryError::Retry {
        reason: format!("malformed body: {reason}"),
        after: None,
    };
    let too_large = || {
        TryError::GiveUp(format!(
            "body inflates to more than {max_range} bytes, refused (limit: --max-range-bytes)"
        ))
    };
    let (body, gz) = if gzipped {
        let body = match state::gunzip_limited(&raw, max_range) {
            Ok(Some(body)) => body,
            Ok(None) => return Err(too_large()),
            Err(e) => return Err(malformed(format!("bad gzip data: {e}"))),
        };
        (Bytes::from(body), raw)
    } else {
        if raw.len() as u64 > max_range {
            return Err(too_large());
        }
        let gz = Bytes::from(state::gzip(&raw));
        (raw, gz)
    };
    body::validate_body(kind, prefix, &body).map_err(|e| malformed(e.to_string()))?;
    state
        .write(prefix, etag.as_deref(), &gz)
        .map_err(TryError::State)?;
    Ok(Outcome::Fetched)
}

/// Exponential backoff with jitter: a random delay in `[d/2, d]`, `d = base * 2^(attempt-1)`,
/// capped at [`MAX_BACKOFF`].
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(rand::thread_rng().gen::<f64>())
}

/// `Retry-After` in seconds (the HTTP-date form falls back to backoff), capped.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// A one-line description of a transport error (reqwest's Display omits the cause).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {cause}")
    }
}

/// Parses a prefix range `AAAAA-BBBBB` (or a single prefix) into prefix values.
pub fn parse_prefix_range(text: &str) -> Result<RangeInclusive<u32>, String> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let parse = |s: &str| {
        Prefix::parse(s.trim().as_bytes())
            .map(|p| p.value())
            .map_err(|e| format!("{s:?}: {e}"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a > b {
        return Err(format!("{text:?}: the range is empty"));
    }
    Ok(a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_capped() {
        let base = Duration::from_millis(100);
        for attempt in 1..40 {
            let d = backoff(base, attempt);
            let full = base
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(MAX_BACKOFF);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn prefix_ranges_parse() {
        assert_eq!(parse_prefix_range("00000-00FFF"), Ok(0..=0xFFF));
        assert_eq!(parse_prefix_range("5baa6"), Ok(0x5BAA6..=0x5BAA6));
        assert!(parse_prefix_range("00100-000FF").is_err());
        assert!(parse_prefix_range("0000G").is_err());
    }

    #[test]
    fn label_omits_credentials_and_marks_partial_runs() {
        let mut opts = SyncOptions::new("https://user:secret@mirror.example:8443/", HashKind::Ntlm);
        assert_eq!(opts.label(), "sync ntlm from mirror.example:8443");
        opts.prefixes = 0..=0xFF;
        assert_eq!(
            opts.label(),
            "sync ntlm from mirror.example:8443 (partial: 00000-000FF)"
        );
    }
}
