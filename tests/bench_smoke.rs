//! Smoke run of `tessera bench` against an in-process cluster: its JSON parses and every
//! figure is positive. (Benchmarks proper are not run in CI.)

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_reports_positive_figures_as_json() {
    let (c, dir) = start(6, "4+2").await;
    let endpoint = c.endpoint();
    let ceiling_dir = dir.path().join("ceiling");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args([
                "bench",
                "--endpoint",
                &endpoint,
                "--size",
                "100KiB",
                "--objects",
                "12",
            ])
            .args([
                "--concurrency",
                "3",
                "--json",
                "--ceiling",
                "--ceiling-bytes",
                "8MiB",
                "--cleanup",
            ])
            .arg("--data-dir")
            .arg(&ceiling_dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for phase in ["put", "get"] {
        for field in ["mb_per_s", "objects_per_s", "p50_ms", "p99_ms"] {
            let x = v[phase][field].as_f64().unwrap_or(-1.0);
            assert!(x > 0.0, "{phase}.{field} = {x}");
        }
        assert_eq!(v[phase]["ok"], 12);
        assert_eq!(v[phase]["errors"], 0);
    }
    for field in [
        "disk_write_mb_per_s",
        "loopback_mb_per_s",
        "loopback_relay_mb_per_s",
        "codec_mb_per_s",
        "put_ceiling_mb_per_s",
    ] {
        assert!(
            v["ceiling"][field].as_f64().unwrap_or(-1.0) > 0.0,
            "ceiling.{field}"
        );
    }
    assert!(v["put_ratio"].as_f64().unwrap() > 0.0);
    assert!(v["get_ratio"].as_f64().unwrap() > 0.0);
    assert!(v["get_ratio_relay"].as_f64().unwrap() > 0.0);
    // --cleanup removed the objects.
    let (_, list) = get(&format!("{}/tessera-bench?list-type=2", c.endpoint())).await;
    assert!(!String::from_utf8(list).unwrap().contains("<Key>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_against_nothing_fails_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "bench",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--objects",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}
