//! The command line as README.md prints it, on real processes: the key and bucket commands
//! with `--coordinator` after the subcommand (and before it), the admin token found where
//! `tessera dev` leaves it, `--json` in any position, refusals that change nothing, and the
//! `tessera dev` banner's lines (awscli, then the curl line) run as printed.

mod common;
use common::procs::*;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// Runs `tessera ARGS` in `cwd` with neither TESSERA_COORDINATOR nor TESSERA_ADMIN_TOKEN set
/// (what a README reader has); returns the exit code, stdout and stderr.
fn tessera(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .current_dir(cwd)
        .env_remove("TESSERA_COORDINATOR")
        .env_remove("TESSERA_ADMIN_TOKEN")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_key_and_bucket_commands_work_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start(dir.path(), 6).await;
    let url = format!("http://{}", c.admin);
    // A reader's working directory after `tessera dev`: the token where dev keeps it.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("tessera-data/coordinator")).unwrap();
    std::fs::write(
        home.join("tessera-data/coordinator/admin.token"),
        c.secrets().admin_token,
    )
    .unwrap();
    let run = |args: &[&str]| tessera(&home, args);

    // README: `tessera key create --name alice --coordinator URL`.
    let (code, out, err) = run(&["key", "create", "--name", "alice", "--coordinator", &url]);
    assert_eq!(code, 0, "{err}");
    let alice = json(&out);
    let id = alice["access_key_id"].as_str().unwrap().to_string();
    assert!(alice["secret_access_key"]
        .as_str()
        .is_some_and(|s| s.len() >= 20));
    let (code, _, err) = run(&[
        "key",
        "import",
        "--access-key-id",
        "TKREADMEIMPORT000001",
        "--secret-access-key",
        "imported-secret-imported-secret-0001",
        "--name",
        "bob",
        "--coordinator",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    // The shared flag before the subcommand works the same.
    let (code, out, err) = run(&["--coordinator", &url, "key", "list"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"alice".into()) && names.contains(&"bob".into()),
        "{out}"
    );

    // `tessera bucket allow|deny|info` on a bucket the (anonymous) cluster created.
    assert_eq!(put(&c.url("readme"), vec![]).await.0, 200);
    let (code, out, err) = run(&[
        "bucket",
        "allow",
        "--key",
        &id,
        "--bucket",
        "readme",
        "--read",
        "--coordinator",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["grants"][&id]["read"], true, "{out}");
    let (code, out, err) = run(&["bucket", "info", "readme", "--coordinator", &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["grants"][&id]["write"], false, "{out}");
    let (code, out, err) = run(&[
        "bucket",
        "deny",
        "--key",
        &id,
        "--bucket",
        "readme",
        "--read",
        "--coordinator",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(json(&out)["grants"].get(&id).is_none(), "{out}");

    // `tessera bucket export|import|delete-policy`: settings as a document, put back whole;
    // a document that does not check out changes nothing.
    let doc = serde_json::json!({
        "grants": { &id: { "read": true, "write": false, "owner": false } },
        "policy": r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::readme/*"}]}"#,
        "cors": [{ "allowed_origins": ["https://app.example"], "allowed_methods": ["GET"] }],
        "versioning": "Enabled",
        "lifecycle": [{ "id": "old-logs", "enabled": true, "filter": { "prefix": "logs/" }, "expiration_days": 30 }],
        "tags": { "team": "ops" },
    });
    let file = dir.path().join("readme.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let f = file.to_str().unwrap();
    let (code, _, err) = run(&[
        "bucket",
        "import",
        "readme",
        "--file",
        f,
        "--coordinator",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["bucket", "export", "readme", "--coordinator", &url]);
    assert_eq!(code, 0, "{err}");
    let exported = json(&out);
    assert_eq!(exported["grants"][&id]["read"], true, "{out}");
    assert_eq!(exported["policy"], doc["policy"], "{out}");
    assert_eq!(
        exported["cors"][0]["allowed_origins"][0],
        "https://app.example"
    );
    assert_eq!(exported["versioning"], "Enabled", "{out}");
    assert_eq!(exported["lifecycle"], doc["lifecycle"], "{out}");
    assert_eq!(exported["tags"]["team"], "ops", "{out}");
    let bad_docs = [
        (serde_json::json!({ "policy": "{not a policy" }), "policy"),
        (
            serde_json::json!({ "versioning": "Suspended", "object_lock": {} }),
            "object lock needs versioning Enabled",
        ),
        (serde_json::json!({ "versioning": "Off" }), "versioning"),
    ];
    for (bad_doc, says) in bad_docs {
        std::fs::write(&file, bad_doc.to_string()).unwrap();
        let (code, _, err) = run(&[
            "bucket",
            "import",
            "readme",
            "--file",
            f,
            "--coordinator",
            &url,
        ]);
        assert_ne!(code, 0);
        assert!(err.contains(says), "{err}");
        let (_, again, _) = run(&["bucket", "export", "readme", "--coordinator", &url]);
        assert_eq!(json(&again), exported, "the refused import changed nothing");
    }
    // The policy above denies everyone everything; the operator can still remove it.
    let (code, out, err) = run(&["bucket", "delete-policy", "readme", "--coordinator", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(json(&out)["policy"].is_null(), "{out}");

    // `--json` is global too: before the subcommand, and `status` honours it.
    let (code, out, err) = run(&["--json", "status", "--coordinator", &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["cluster"]["nodes"].as_array().unwrap().len(), 6);

    // Refusals change nothing: a wrong token (given in any position), an unknown key.
    let bad = dir.path().join("bad.token");
    std::fs::write(&bad, "not-the-token").unwrap();
    let (code, _, err) = run(&[
        "key",
        "delete",
        &id,
        "--admin-token-file",
        bad.to_str().unwrap(),
        "--coordinator",
        &url,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("Bearer"), "{err}");
    let (code, _, err) = run(&[
        "key",
        "delete",
        "TKNOSUCHKEY000000000",
        "--coordinator",
        &url,
    ]);
    assert_ne!(code, 0, "{err}");
    let (_, out, _) = run(&["key", "list", "--coordinator", &url]);
    assert_eq!(json(&out).as_array().unwrap().len(), names.len(), "{out}");
    let (code, _, err) = run(&["key", "delete", &id, "--coordinator", &url]);
    assert_eq!(code, 0, "{err}");

    // Nothing listening where the default points: a clear error, not a hang.
    let (code, _, err) = run(&["key", "list", "--coordinator", "http://127.0.0.1:1"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot reach the coordinator"), "{err}");
}

/// The lines `tessera dev` prints, run as printed: the `export` line, `aws s3 mb`, `aws s3 cp`
/// and the curl line (which must spell out the payload hash header curl does not add).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_banner_lines_work_as_printed() {
    dev_banner_works(&[], &[]).await;
}

/// `tessera dev --tls`: the same lines work over HTTPS once the export line (which names the
/// dev CA for awscli, curl and `tessera`) is pasted, and so does an operator command; the
/// cluster stops on SIGTERM with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_banner_lines_work_as_printed_with_tls() {
    dev_banner_works(&["--tls"], &["tessera status"]).await;
}

/// Starts `tessera dev EXTRA`, pastes its export line and runs each command it suggests, then
/// `more` (with `tessera` meaning this build).
async fn dev_banner_works(extra: &[&str], more: &[&str]) {
    if Command::new("aws").arg("--version").output().is_err() {
        panic!("awscli is missing: scripts/setup.sh installs it");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "dev",
            "--data-dir",
            "./tessera-data",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = dev.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.contains("Ctrl-C stops");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let export = banner
        .iter()
        .find(|l| l.trim_start().starts_with("export AWS_ACCESS_KEY_ID="))
        .unwrap_or_else(|| panic!("no export line in {banner:?}"))
        .trim()
        .to_string();
    let tried: Vec<String> = banner
        .iter()
        .skip_while(|l| l.trim() != "try:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(tried.len(), 4, "{banner:?}");
    assert!(tried[3].starts_with("curl "), "{tried:?}");
    std::fs::write(dir.path().join("README.md"), "read me, byte for byte\n").unwrap();
    // As a reader would: paste the export line, then each suggested command.
    let more: Vec<String> = more.iter().map(|m| m.replacen("tessera", BIN, 1)).collect();
    let script = format!(
        "set -e\n{export}\n{}\n{}\n",
        tried.join("\n"),
        more.iter()
            .map(|m| format!("{m} >/dev/null"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let out = Command::new("sh")
        .current_dir(dir.path())
        .args(["-c", &script])
        .output()
        .unwrap();
    // SIGTERM stops the whole cluster with exit code 0.
    Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status()
        .unwrap();
    let status = dev.wait().unwrap();
    assert!(status.success(), "tessera dev exited with {status}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The curl line GETs the object `aws s3 cp` put: its body ends the output.
    assert!(stdout.ends_with("read me, byte for byte\n"), "{stdout}");
}
