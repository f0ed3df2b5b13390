//! The conformance checks of access stamps (part of [`super::conformance::run_all`]): a
//! write stamped with the bucket and access key its access check saw commits only while
//! both are unchanged, and a refused write changes nothing.

use super::fixtures::{bucket, clear_garbage, commit_segment, object, put, segment, version_of};
use super::{access_stamp, BucketSetting, KeyRecord, MetaError, Metadata, Precondition};

fn stamped(stamp: u64, caller: Option<&str>, cond: Precondition) -> Precondition {
    Precondition::Checked {
        stamp,
        caller: caller.map(String::from),
        cond: Box::new(cond),
    }
}

/// Stamped commits: single PUTs and a segment's objects, signed and unsigned.
pub async fn stamped_writes(m: &dyn Metadata) {
    m.create_bucket(bucket("st")).await.unwrap();
    let key = KeyRecord {
        id: "STAMPKEY".into(),
        secret: "s".into(),
        name: "stamps".into(),
        created_ms: 1,
    };
    m.create_key(key.clone()).await.unwrap();
    let b = m.bucket("st".into()).await.unwrap().unwrap();
    let signed = access_stamp(&b, Some(&key));
    let unsigned = access_stamp(&b, None);
    assert_ne!(signed, unsigned, "the key is part of the stamp");
    let first = put(
        m,
        object("st", "k", 1),
        stamped(signed, Some("STAMPKEY"), Precondition::None),
    )
    .await
    .expect("a stamp that matches commits");
    // The object condition inside a stamp still counts.
    assert!(matches!(
        put(
            m,
            object("st", "k", 2),
            stamped(signed, Some("STAMPKEY"), Precondition::Absent)
        )
        .await,
        Err(MetaError::PreconditionFailed)
    ));
    // A bucket setting changed after the check: refused, nothing written.
    m.set_bucket_setting("st".into(), BucketSetting::Policy(Some("{}".into())))
        .await
        .unwrap();
    for (stamp, caller) in [(signed, Some("STAMPKEY")), (unsigned, None)] {
        assert!(
            matches!(
                put(
                    m,
                    object("st", "k", 3),
                    stamped(stamp, caller, Precondition::None)
                )
                .await,
                Err(MetaError::Fenced(_))
            ),
            "a write decided on the old bucket record is refused ({caller:?})"
        );
    }
    assert_eq!(version_of(m, "st", "k").await, Some(first.version));
    let b = m.bucket("st".into()).await.unwrap().unwrap();
    let signed = access_stamp(&b, Some(&key));
    // In a segment each object is decided on its own.
    let (seg, mut entries) = segment("st", &["s1", "s2"], &[4, 4]);
    entries[0].cond = stamped(signed, Some("STAMPKEY"), Precondition::None);
    entries[1].cond = stamped(signed ^ 1, Some("STAMPKEY"), Precondition::None);
    let out = commit_segment(m, &seg, entries).await;
    assert!(out[0].is_ok(), "{:?}", out[0]);
    assert!(matches!(out[1], Err(MetaError::Fenced(_))), "{:?}", out[1]);
    assert_eq!(version_of(m, "st", "s2").await, None);
    // The key deleted after the check: refused.
    m.delete_key("STAMPKEY".into()).await.unwrap();
    assert!(matches!(
        put(
            m,
            object("st", "k", 4),
            stamped(signed, Some("STAMPKEY"), Precondition::None)
        )
        .await,
        Err(MetaError::Fenced(_))
    ));
    assert_eq!(version_of(m, "st", "k").await, Some(first.version));
    // Leave the store as found.
    for k in ["k", "s1"] {
        m.delete_object("st".into(), k.into()).await.unwrap();
    }
    clear_garbage(m).await;
    m.delete_bucket("st".into()).await.unwrap();
}
