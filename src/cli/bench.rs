//! `tessera bench`: the load generator ([`tessera::bench`]) on the command line.

use super::global::Global;

/// `tessera bench` options.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    config: tessera::bench::BenchConfig,
}

/// Runs the benchmark and prints its report; fails if any request failed.
pub async fn run(a: BenchArgs, g: &Global) -> anyhow::Result<i32> {
    let mut cfg = a.config;
    cfg.client_tls = g.client_tls()?;
    anyhow::ensure!(
        cfg.endpoint.is_some() || cfg.ceiling,
        "give --endpoint, --ceiling or both"
    );
    let report = tessera::bench::run(cfg, g.json).await?;
    if g.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        tessera::bench::print(&report);
    }
    let failed = report
        .put
        .iter()
        .chain(&report.get)
        .chain(&report.head)
        .any(|p| p.errors > 0);
    anyhow::ensure!(!failed, "some requests failed");
    Ok(0)
}
