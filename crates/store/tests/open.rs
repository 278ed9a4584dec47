//! Opening a store: scheme dispatch, SQLite files and `sqlite::memory:`.

use previewd_core::ports::StoreError;
use previewd_core::{DeployRequest, NamingConfig, PreviewKey, PreviewSpec, Timestamp};
use previewd_store::{SqlStore, open};

fn request(branch: &str) -> DeployRequest {
    DeployRequest {
        key: PreviewKey::new("acme/shop", branch).unwrap(),
        spec: PreviewSpec::default(),
        expiry: previewd_core::Expiry::Never,
    }
}

#[tokio::test]
async fn an_unknown_scheme_is_refused_with_the_field_named() {
    let err = open("mysql://root@db/previewd").await.err().unwrap();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                field: "database_url",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_memory_database_is_one_database_for_every_caller() {
    let store = open("sqlite::memory:").await.unwrap();
    let now = Timestamp::from_timestamp_millis(0).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let req = request(&format!("b{i}"));
                store
                    .apply_deploy(&req, &NamingConfig::default(), now)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let all = store.list(&Default::default()).await.unwrap();
    assert_eq!(all.len(), 8);
}

#[tokio::test]
async fn a_file_is_created_and_reopened_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sub.db").display());
    let now = Timestamp::from_timestamp_millis(0).unwrap();
    let store = SqlStore::connect(&url).await.unwrap();
    let req = request("main");
    let first =
        previewd_core::ports::Store::apply_deploy(&store, &req, &NamingConfig::default(), now)
            .await
            .unwrap();
    store.close().await;
    drop(store);
    // Migrations are already applied the second time; opening must not fail.
    let store = open(&url).await.unwrap();
    assert_eq!(store.get(&req.key).await.unwrap(), Some(first.preview));
}

#[tokio::test]
async fn a_second_replica_on_one_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let first = open(&url).await.unwrap();
    let err = open(&url)
        .await
        .err()
        .expect("a second store on the same file is refused");
    let text = err.to_string();
    assert!(
        text.starts_with("store.url: another previewd is already using"),
        "{text}"
    );
    assert!(text.contains("PostgreSQL"), "{text}");
    drop(first);
    open(&url).await.expect("free again once the first is gone");
}

/// The settings a SQLite file is opened with, as every pooled connection
/// reports them: WAL, NORMAL sync, a 5 s busy timeout, foreign keys on.
#[tokio::test]
async fn a_file_is_opened_in_wal_mode_with_its_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let mut conns = Vec::new();
    // Several connections at once, so more than the first is checked.
    for _ in 0..3 {
        conns.push(store.pool().acquire().await.unwrap());
    }
    for conn in &mut conns {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        let fks: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!((mode.as_str(), sync, busy, fks), ("wal", 1, 5000, 1));
    }
}
