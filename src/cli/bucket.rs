//! `tessera bucket`: who may use a bucket (allow, deny, info), its settings as a document
//! (export, import) and the operator's way out of a locking policy (delete-policy).

use super::global::Global;
use serde_json::{json, Value};

/// Bucket permission commands.
#[derive(clap::Subcommand)]
pub enum BucketCmd {
    /// Give a key permissions in a bucket (all three if none is named).
    Allow(GrantArgs),
    /// Take permissions away (all three if none is named).
    Deny(GrantArgs),
    /// Show a bucket's owner, grants, erasure code, versioning, object lock and lifecycle
    /// rules (its usage, current and noncurrent, is in `GET /stats` and the console).
    Info {
        /// Bucket name.
        bucket: String,
    },
    /// Print every setting of a bucket (grants, ACL, policy, CORS, public access block,
    /// ownership, versioning, object lock, lifecycle rules, tags) as one JSON document, to keep
    /// elsewhere: a metadata rebuild from the nodes cannot restore most of them.
    Export {
        /// Bucket name.
        bucket: String,
    },
    /// Replace a bucket's settings with a document `export` printed (settings it does not
    /// hold are cleared); a document that does not check out changes nothing.
    Import {
        /// Bucket name.
        bucket: String,
        /// The document (`-`: standard input).
        #[arg(long)]
        file: String,
    },
    /// Delete a bucket's policy, whatever it says (the way out of a policy that locks every
    /// key out, the owner's included).
    DeletePolicy {
        /// Bucket name.
        bucket: String,
    },
}

/// Which key, which bucket, which permissions.
#[derive(clap::Args)]
pub struct GrantArgs {
    /// Access key id.
    #[arg(long)]
    pub key: String,
    /// Bucket name.
    #[arg(long)]
    pub bucket: String,
    /// Read and list objects.
    #[arg(long)]
    pub read: bool,
    /// Write and delete objects.
    #[arg(long)]
    pub write: bool,
    /// Everything, including deleting the bucket.
    #[arg(long)]
    pub owner: bool,
}

impl GrantArgs {
    fn body(&self) -> Value {
        json!({ "key": self.key, "read": self.read, "write": self.write, "owner": self.owner })
    }
}

/// Runs `cmd`; prints the bucket's owner and grants as JSON.
pub async fn run(cmd: BucketCmd, g: &Global) -> anyhow::Result<i32> {
    let admin = g.admin().await?;
    let v: Value = match cmd {
        BucketCmd::Info { bucket } => admin.get(&format!("/buckets/{bucket}")).await?,
        BucketCmd::Export { bucket } => admin.get(&format!("/buckets/{bucket}/settings")).await?,
        BucketCmd::Import { bucket, file } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)?
            };
            let doc: Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{file} is not a settings document: {e}"))?;
            admin
                .put(&format!("/buckets/{bucket}/settings"), &doc)
                .await?
        }
        BucketCmd::DeletePolicy { bucket } => {
            admin.delete(&format!("/buckets/{bucket}/policy")).await?
        }
        BucketCmd::Allow(a) => {
            let path = format!("/buckets/{}/allow", a.bucket);
            admin.post(&path, &a.body()).await?
        }
        BucketCmd::Deny(a) => {
            let path = format!("/buckets/{}/deny", a.bucket);
            admin.post(&path, &a.body()).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
