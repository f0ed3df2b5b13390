//! Data protection as backup tools use it: versioning (every overwrite and delete kept,
//! delete markers, suspension, version listings) and tags, through boto3
//! (tests/clients/versions_and_tags.py), awscli and rclone (tests/clients/version_clients.sh);
//! object lock as an immutable backup repository uses it (tests/clients/immutable_backup.py);
//! lifecycle rules applied by the leader's worker with a shortened day
//! (tests/clients/lifecycle.py).

mod common;

use common::*;

/// boto3 through versioning and tags, every refusal checked to change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_and_tags_through_boto3() {
    let (c, _dir, keys) = start_signed(&["backup"]).await;
    let (key, secret) = keys[0].clone();
    run_client(
        "python3",
        "versions_and_tags.py",
        &[("ENDPOINT", c.endpoint()), ("KEY", key), ("SECRET", secret)],
    )
    .await;
}

/// awscli and rclone list and read old versions the way a restore does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awscli_and_rclone_read_old_versions() {
    let (c, dir, keys) = start_signed(&["restore"]).await;
    let (key, secret) = keys[0].clone();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    run_client(
        "bash",
        "version_clients.sh",
        &[
            ("ENDPOINT", c.endpoint()),
            ("KEY", key),
            ("SECRET", secret),
            ("WORK", work.display().to_string()),
        ],
    )
    .await;
}

/// An immutable backup repository: COMPLIANCE-retained versions survive every attempt to
/// remove or weaken them with their bytes intact, and go once the retention has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_immutable_backup_repository_keeps_its_versions() {
    let (c, _dir, keys) = start_signed(&["appliance", "writer"]).await;
    run_client("python3", "immutable_backup.py", &two_key_env(&c, &keys)).await;
}

/// Lifecycle rules through boto3 with a one-second lifecycle day: objects, noncurrent
/// versions, lone delete markers and old uploads go when their rules say, nothing else does,
/// a locked version stays; malformed configurations change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_rules_expire_what_they_name_and_nothing_else() {
    let (c, _dir, keys) = start_signed_with(&["archivist"], |cfg| {
        cfg.coordinator.lifecycle_day = std::time::Duration::from_secs(1);
    })
    .await;
    let (key, secret) = keys[0].clone();
    run_client(
        "python3",
        "lifecycle.py",
        &[
            ("ENDPOINT", c.endpoint()),
            ("KEY", key),
            ("SECRET", secret),
            ("ADMIN", c.admin_endpoint()),
            ("ADMIN_TOKEN", c.secrets().admin_token.clone()),
        ],
    )
    .await;
}
