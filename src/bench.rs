//! `tessera bench`: a load generator for any S3 path-style endpoint (PUT phase, GET phase),
//! and `--ceiling`: this machine's limits measured in the same run (disk with fsync, loopback
//! TCP, single-core codec and blake3), so end-to-end figures can be read as fractions of what
//! the hardware allows.

use anyhow::{bail, Context};
use bytes::Bytes;
use serde::Serialize;
use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_coordinator::{EcSpec, ErasureCodec};

/// What to run (also the command line of `tessera bench`).
#[derive(Clone, Debug, clap::Args)]
pub struct BenchConfig {
    /// Endpoint, e.g. http://127.0.0.1:7070 (omit with --ceiling for ceilings only); a
    /// comma-separated list spreads the objects over several (replicated coordinators).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Bucket (created if missing).
    #[arg(long, default_value = "tessera-bench")]
    pub bucket: String,
    /// Object size.
    #[arg(long, default_value = "16MiB", value_parser = tessera_coordinator::names::parse_size)]
    pub size: u64,
    /// Objects per phase.
    #[arg(long, default_value_t = 64)]
    pub objects: usize,
    /// Run each phase for this long (cycling over --objects) instead.
    #[arg(long, value_parser = tessera_coordinator::names::parse_duration)]
    pub duration: Option<Duration>,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Erasure code for the bucket and objects (x-tessera-ec).
    #[arg(long)]
    pub ec: Option<EcSpec>,
    /// Skip the PUT phase and GET what an earlier run wrote (degraded reads after stopping
    /// nodes).
    #[arg(long)]
    pub skip_put: bool,
    /// Skip the GET phase (load a bucket with many objects, a run at a time).
    #[arg(long)]
    pub skip_get: bool,
    /// Also HEAD every object after the GET phase.
    #[arg(long)]
    pub head: bool,
    /// Object names: this prefix, then the object's number in 8 digits.
    #[arg(long, default_value = "bench/obj-")]
    pub prefix: String,
    /// Number of the first object (so that runs can add to one bucket: `--start 1000000`).
    #[arg(long, default_value_t = 0)]
    pub start: usize,
    /// Delete the objects afterwards.
    #[arg(long)]
    pub cleanup: bool,
    /// Also measure disk, loopback, codec and blake3 ceilings and print ratios.
    #[arg(long)]
    pub ceiling: bool,
    /// Directory on the filesystem whose write bandwidth bounds PUTs.
    #[arg(long, default_value = ".")]
    pub data_dir: std::path::PathBuf,
    /// Bytes written for the disk and loopback ceilings.
    #[arg(long, default_value = "512MiB", value_parser = tessera_coordinator::names::parse_size)]
    pub ceiling_bytes: u64,
    /// Access key id to sign requests with (none: unsigned requests, for `--anonymous`).
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// Secret access key to sign requests with.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: Option<String>,
    /// Region to sign for.
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Sign `UNSIGNED-PAYLOAD` instead of the body's SHA-256.
    #[arg(long)]
    pub unsigned_payload: bool,
    /// What an `https://` endpoint is verified with (the global `--ca-cert`).
    #[arg(skip)]
    pub client_tls: tessera_node::tls::ClientTls,
}

/// Signs one request of the benchmark, or leaves it unsigned without a key.
#[derive(Clone)]
struct Auth {
    signer: Option<crate::sign::Signer>,
    /// SHA-256 of the PUT payload (hex), computed once: every PUT sends the same bytes.
    put_sha256: Option<String>,
}

impl Auth {
    fn new(cfg: &BenchConfig, body: &[u8]) -> anyhow::Result<Self> {
        let signer = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(k), Some(s)) => Some(crate::sign::Signer::new(k, s, &cfg.region)),
            (None, None) => None,
            _ => bail!("give both --access-key-id and --secret-access-key (or neither)"),
        };
        let put_sha256 = (!cfg.unsigned_payload).then(|| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(body))
        });
        Ok(Auth { signer, put_sha256 })
    }

    /// `req` signed for `method url`; `put` is the PUT's body (else the body is empty),
    /// `headers` are the extra headers to sign.
    fn apply(
        &self,
        mut req: reqwest::RequestBuilder,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        put: Option<&[u8]>,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let Some(s) = &self.signer else {
            return Ok(req);
        };
        // The shared body's hash is kept; a small object's own body is hashed here.
        let own = put
            .filter(|b| self.put_sha256.is_some() && b.len() as u64 <= DISTINCT_UP_TO)
            .map(|b| {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(b))
            });
        let payload = match put {
            Some(_) => own.as_deref().or(self.put_sha256.as_deref()),
            None => Some(crate::sign::EMPTY_SHA256),
        };
        for (n, v) in s.headers(method, url, headers, payload)? {
            req = req.header(n, v);
        }
        Ok(req)
    }
}

/// Figures of one phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Phase {
    /// Megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Requests per second.
    pub objects_per_s: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile latency.
    pub p90_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Length of the phase.
    pub seconds: f64,
}

/// Measured machine limits.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ceiling {
    /// Sequential write bandwidth with a final fsync on the data dir's filesystem.
    pub disk_write_mb_per_s: f64,
    /// One TCP stream over loopback.
    pub loopback_mb_per_s: f64,
    /// Two TCP hops over loopback through a relay thread that only copies (sender -> relay ->
    /// receiver): what every byte of a GET pays on one machine (node -> coordinator ->
    /// client), with no other work per byte.
    pub loopback_relay_mb_per_s: f64,
    /// Single-core encode throughput (data in) for the benchmark's k+m, 1 MiB pieces.
    pub codec_mb_per_s: f64,
    /// Single-core blake3.
    pub blake3_mb_per_s: f64,
    /// min(disk x k/(k+m), loopback, codec): what a PUT could reach at best.
    pub put_ceiling_mb_per_s: f64,
    /// min(loopback, disk-independent): what a GET could reach at best (reads are served from
    /// the page cache on a warm run, so loopback bounds it).
    pub get_ceiling_mb_per_s: f64,
}

/// The whole report, printed with `--json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// PUT phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub put: Option<Phase>,
    /// GET phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get: Option<Phase>,
    /// HEAD phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<Phase>,
    /// Machine ceilings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
    /// PUT MB/s / PUT ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub put_ratio: Option<f64>,
    /// GET MB/s / GET ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get_ratio: Option<f64>,
    /// GET MB/s / two-hop loopback ceiling (`loopback_relay_mb_per_s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get_ratio_relay: Option<f64>,
    /// Object size in bytes.
    pub size: u64,
    /// Concurrency.
    pub concurrency: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn phase(lat: Vec<f64>, bytes: u64, errors: u64, secs: f64) -> Phase {
    let mut lat = lat;
    lat.sort_by(|a, b| a.total_cmp(b));
    Phase {
        mb_per_s: bytes as f64 / 1e6 / secs,
        objects_per_s: lat.len() as f64 / secs,
        p50_ms: percentile(&lat, 0.5),
        p90_ms: percentile(&lat, 0.9),
        p99_ms: percentile(&lat, 0.99),
        ok: lat.len() as u64,
        errors,
        seconds: secs,
    }
}

fn payload(size: u64) -> Bytes {
    payload_of(size, b"tessera bench payload")
}

/// Objects up to this size get bytes of their own (else one shared buffer): identical small
/// bodies would let a compressing store (RocksDB's blocks) keep many of them for the price of
/// one, and bytes on disk per logical byte would flatter it.
const DISTINCT_UP_TO: u64 = 1 << 20;

/// The body of object `i`: `shared`, or bytes of its own for small objects.
fn object_body(shared: &Bytes, i: usize) -> Bytes {
    if shared.len() as u64 > DISTINCT_UP_TO {
        return shared.clone();
    }
    payload_of(
        shared.len() as u64,
        format!("tessera bench object {i}").as_bytes(),
    )
}

fn payload_of(size: u64, seed: &[u8]) -> Bytes {
    let mut v = vec![0u8; size as usize];
    let mut h = blake3::Hasher::new();
    h.update(seed);
    h.finalize_xof().fill(&mut v);
    Bytes::from(v)
}

fn progress(total: u64, what: &str, quiet: bool) -> Option<indicatif::ProgressBar> {
    (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{what:>4} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} {{eta}}"
            ))
            .unwrap()
            .progress_chars("=> "),
        );
        b
    })
}

/// Runs one phase: `op(i)` for object indices, `concurrency` at a time, until `objects` ops
/// or `duration` passes.
async fn run_phase<F, Fut>(cfg: &BenchConfig, what: &str, quiet: bool, op: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u64>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let bar = progress(cfg.objects as u64, what, quiet);
    let deadline = cfg.duration.map(|d| Instant::now() + d);
    let started = Instant::now();
    let workers: Vec<_> = (0..cfg.concurrency)
        .map(|_| {
            let (op, next, bytes, errors, lat, bar) = (
                op.clone(),
                next.clone(),
                bytes.clone(),
                errors.clone(),
                lat.clone(),
                bar.clone(),
            );
            let objects = cfg.objects;
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let i = match deadline {
                        Some(d) if Instant::now() >= d => break,
                        Some(_) => n % objects,
                        None if n >= objects => break,
                        None => n,
                    };
                    let t = Instant::now();
                    match op(i).await {
                        Ok(b) => {
                            bytes.fetch_add(b, Ordering::Relaxed);
                            lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("{e:#}");
                            }
                        }
                    }
                    if let Some(b) = &bar {
                        b.inc(1);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let lat = std::mem::take(&mut *lat.lock().unwrap());
    phase(
        lat,
        bytes.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        secs,
    )
}

/// Runs the benchmark described by `cfg`.
pub async fn run(cfg: BenchConfig, quiet: bool) -> anyhow::Result<Report> {
    if cfg.concurrency == 0 || cfg.objects == 0 {
        bail!("--concurrency and --objects must be at least 1");
    }
    let mut report = Report {
        size: cfg.size,
        concurrency: cfg.concurrency,
        ..Default::default()
    };
    if let Some(endpoint) = cfg.endpoint.clone() {
        let endpoints: Vec<String> = endpoint
            .split(',')
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .filter(|e| !e.is_empty())
            .collect();
        anyhow::ensure!(!endpoints.is_empty(), "--endpoint names no URL");
        let endpoint = endpoints[0].clone();
        let http = cfg
            .client_tls
            .apply(reqwest::Client::builder())
            .pool_max_idle_per_host(cfg.concurrency * 2)
            .tcp_nodelay(true)
            .build()?;
        let bucket_url = format!("{endpoint}/{}", cfg.bucket);
        let body = payload(cfg.size);
        let auth = Auth::new(&cfg, &body)?;
        let ec = cfg.ec.map(|ec| ec.to_string());
        let ec_header: Vec<(&str, &str)> =
            ec.iter().map(|e| ("x-tessera-ec", e.as_str())).collect();
        let r = auth
            .apply(http.put(&bucket_url), "PUT", &bucket_url, &ec_header, None)?
            .send()
            .await
            .with_context(|| format!("cannot reach {endpoint}"))?;
        if !r.status().is_success() && r.status().as_u16() != 409 {
            bail!(
                "creating bucket {}: {} {}",
                cfg.bucket,
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        // Object i goes through endpoint i mod n (a PUT and its GET use the same one).
        let buckets: Vec<String> = endpoints
            .iter()
            .map(|e| format!("{e}/{}", cfg.bucket))
            .collect();
        let (prefix, start) = (cfg.prefix.clone(), cfg.start);
        let url = move |i: usize| {
            let n = start + i;
            format!("{}/{prefix}{n:08}", buckets[n % buckets.len()])
        };
        let url = Arc::new(url);
        if !cfg.skip_put {
            let (h, u, b, a, ec) = (
                http.clone(),
                url.clone(),
                body.clone(),
                auth.clone(),
                ec.clone(),
            );
            report.put = Some(
                run_phase(&cfg, "PUT", quiet, move |i| {
                    let (h, u, b, a, ec) = (h.clone(), u.clone(), b.clone(), a.clone(), ec.clone());
                    async move {
                        let len = b.len() as u64;
                        let url = u(i);
                        let headers: Vec<(&str, &str)> =
                            ec.iter().map(|e| ("x-tessera-ec", e.as_str())).collect();
                        let b = object_body(&b, start + i);
                        let req =
                            a.apply(h.put(&url).body(b.clone()), "PUT", &url, &headers, Some(&b))?;
                        let r = req.send().await?;
                        if !r.status().is_success() {
                            bail!(
                                "PUT {url}: {} {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            );
                        }
                        Ok(len)
                    }
                })
                .await,
            );
        }
        let (h, u, size, a) = (http.clone(), url.clone(), cfg.size, auth.clone());
        if !cfg.skip_get {
            report.get = Some(
                run_phase(&cfg, "GET", quiet, move |i| {
                    let (h, u, a) = (h.clone(), u.clone(), a.clone());
                    async move {
                        let url = u(i);
                        let mut r = a.apply(h.get(&url), "GET", &url, &[], None)?.send().await?;
                        if !r.status().is_success() {
                            bail!("GET {url}: {}", r.status());
                        }
                        let mut n = 0u64;
                        while let Some(c) = r.chunk().await? {
                            n += c.len() as u64;
                        }
                        if n != size {
                            bail!("GET {url}: {n} bytes, expected {size}");
                        }
                        Ok(n)
                    }
                })
                .await,
            );
        }
        if cfg.head {
            let (h, u, a) = (http.clone(), url.clone(), auth.clone());
            report.head = Some(
                run_phase(&cfg, "HEAD", quiet, move |i| {
                    let (h, u, a) = (h.clone(), u.clone(), a.clone());
                    async move {
                        let url = u(i);
                        let r = a
                            .apply(h.head(&url), "HEAD", &url, &[], None)?
                            .send()
                            .await?;
                        let len: u64 = r
                            .headers()
                            .get(reqwest::header::CONTENT_LENGTH)
                            .and_then(|v| v.to_str().ok()?.parse().ok())
                            .unwrap_or(0);
                        if !r.status().is_success() || len != size {
                            bail!("HEAD {url}: {} ({len} bytes, expected {size})", r.status());
                        }
                        Ok(0)
                    }
                })
                .await,
            );
        }
        if cfg.cleanup {
            for i in 0..cfg.objects {
                let u = url(i);
                if let Ok(req) = auth.apply(http.delete(&u), "DELETE", &u, &[], None) {
                    let _ = req.send().await;
                }
            }
        }
    }
    if cfg.ceiling {
        let ec = cfg.ec.unwrap_or(EcSpec { k: 4, m: 2 });
        let c = measure_ceiling(&cfg.data_dir, cfg.ceiling_bytes, ec).await?;
        if let Some(p) = &report.put {
            report.put_ratio = Some(p.mb_per_s / c.put_ceiling_mb_per_s);
        }
        if let Some(g) = &report.get {
            report.get_ratio = Some(g.mb_per_s / c.get_ceiling_mb_per_s);
            report.get_ratio_relay = Some(g.mb_per_s / c.loopback_relay_mb_per_s);
        }
        report.ceiling = Some(c);
    }
    Ok(report)
}

/// Measures the machine's limits (see [`Ceiling`]).
pub async fn measure_ceiling(
    dir: &std::path::Path,
    bytes: u64,
    ec: EcSpec,
) -> anyhow::Result<Ceiling> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let disk = disk_write(&dir, bytes)?;
        let loopback = loopback(bytes)?;
        let relay = loopback_relay(bytes)?;
        let codec = codec_rate(ec)?;
        let blake3 = blake3_rate();
        let k = ec.k as f64;
        let n = (ec.k + ec.m) as f64;
        Ok(Ceiling {
            disk_write_mb_per_s: disk,
            loopback_mb_per_s: loopback,
            loopback_relay_mb_per_s: relay,
            codec_mb_per_s: codec,
            blake3_mb_per_s: blake3,
            put_ceiling_mb_per_s: (disk * k / n).min(loopback).min(codec),
            get_ceiling_mb_per_s: loopback,
        })
    })
    .await?
}

fn disk_write(dir: &std::path::Path, bytes: u64) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(".tessera-ceiling-{}", std::process::id()));
    let buf = payload(4 << 20);
    let t = Instant::now();
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("writing in {}", dir.display()))?;
    let mut written = 0;
    while written < bytes {
        f.write_all(&buf)?;
        written += buf.len() as u64;
    }
    f.sync_all()?;
    let secs = t.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(written as f64 / 1e6 / secs)
}

fn loopback(bytes: u64) -> anyhow::Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || drain(listener.accept()?.0));
    let t = send(addr, bytes)?;
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("loopback reader panicked"))??;
    Ok(got as f64 / 1e6 / t.elapsed().as_secs_f64())
}

/// Connects to `addr` and writes `bytes` (rounded up to whole MiB); returns when it started.
fn send(addr: std::net::SocketAddr, bytes: u64) -> std::io::Result<Instant> {
    let buf = payload(1 << 20);
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr)?;
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&buf)?;
        sent += buf.len() as u64;
    }
    Ok(t)
}

/// Reads a stream to its end, returning the byte count.
fn drain(mut s: std::net::TcpStream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let r = s.read(&mut buf)?;
        if r == 0 {
            return Ok(n);
        }
        n += r as u64;
    }
}

fn loopback_relay(bytes: u64) -> anyhow::Result<f64> {
    let first = std::net::TcpListener::bind("127.0.0.1:0")?;
    let second = std::net::TcpListener::bind("127.0.0.1:0")?;
    let (a1, a2) = (first.local_addr()?, second.local_addr()?);
    let receiver = std::thread::spawn(move || drain(second.accept()?.0));
    let relay = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut inp, _) = first.accept()?;
        let mut out = std::net::TcpStream::connect(a2)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let r = inp.read(&mut buf)?;
            if r == 0 {
                return Ok(());
            }
            out.write_all(&buf[..r])?;
        }
    });
    let t = send(a1, bytes)?;
    relay
        .join()
        .map_err(|_| anyhow::anyhow!("loopback relay panicked"))??;
    let got = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("loopback reader panicked"))??;
    Ok(got as f64 / 1e6 / t.elapsed().as_secs_f64())
}

/// Single-core parity computation for `ec`, 1 MiB data pieces, into buffers allocated once
/// (the codec's own speed; `benches/codec_rate.rs` measures the same way).
fn codec_rate(ec: EcSpec) -> anyhow::Result<f64> {
    let codec = ErasureCodec::new(ec.k as usize, ec.m as usize)?;
    let piece = payload(1 << 20);
    let data: Vec<&[u8]> = (0..ec.k).map(|_| &piece[..]).collect();
    let mut parity = vec![vec![0u8; 1 << 20]; ec.m as usize];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_millis(500) {
        let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(|p| &mut p[..]).collect();
        codec.parity_into(std::hint::black_box(&data), &mut outs);
        n += (data.len() << 20) as u64;
    }
    Ok(n as f64 / 1e6 / t.elapsed().as_secs_f64())
}

fn blake3_rate() -> f64 {
    let buf = payload(1 << 20);
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_millis(300) {
        std::hint::black_box(blake3::hash(&buf));
        n += buf.len() as u64;
    }
    n as f64 / 1e6 / t.elapsed().as_secs_f64()
}

/// Human-readable report.
pub fn print(r: &Report) {
    let line = |name: &str, p: &Phase| {
        println!(
            "{name}: {:.1} MB/s, {:.1} objects/s, latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms ({} ok, {} errors, {:.1} s)",
            p.mb_per_s, p.objects_per_s, p.p50_ms, p.p90_ms, p.p99_ms, p.ok, p.errors, p.seconds
        )
    };
    if let Some(p) = &r.put {
        line("PUT", p);
    }
    if let Some(g) = &r.get {
        line("GET", g);
    }
    if let Some(h) = &r.head {
        line("HEAD", h);
    }
    if let Some(c) = &r.ceiling {
        println!(
            "ceiling: disk write (fsync) {:.0} MB/s, loopback {:.0} MB/s (two hops through a relay {:.0} MB/s), codec {:.0} MB/s, blake3 {:.0} MB/s -> PUT ceiling {:.0} MB/s, GET ceiling {:.0} MB/s",
            c.disk_write_mb_per_s, c.loopback_mb_per_s, c.loopback_relay_mb_per_s, c.codec_mb_per_s, c.blake3_mb_per_s, c.put_ceiling_mb_per_s, c.get_ceiling_mb_per_s
        );
    }
    if let Some(x) = r.put_ratio {
        println!("PUT = {:.0}% of its ceiling", x * 100.0);
    }
    if let Some(x) = r.get_ratio {
        println!("GET = {:.0}% of its ceiling", x * 100.0);
    }
    if let Some(x) = r.get_ratio_relay {
        println!("GET = {:.0}% of the two-hop loopback ceiling", x * 100.0);
    }
}
