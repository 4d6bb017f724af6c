//! The store layer against a real S3 server: the local cluster's s3s-fs, or RGW when
//! `TASKYARD_STORE_ENV` names the env file tests/store/rgw-up.sh writes. Besides the store's
//! own operations this measures the S3 features the code relies on (conditional creates,
//! listing) or will (multipart uploads), and asserts each server's behaviour where the two
//! differ; the README's RGW section lists the differences.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use taskyard_common::store::{PutOutcome, Store};
use taskyard_tests::cluster::{ClusterEnv, StoreKind};

/// A key prefix no other run shares, so tests need no clean bucket.
fn run_prefix(test: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("it-store/{test}-{}-{now}/", std::process::id())
}

/// A plain SDK client for the S3 calls the store does not make (yet), set up as the store
/// sets up its own.
async fn raw_client(env: &ClusterEnv) -> Client {
    let settings = env.s3_settings();
    let (id, secret) = settings.credentials.clone().expect("the test env has keys");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .endpoint_url(settings.endpoint.clone().expect("the test env has an endpoint"))
        .credentials_provider(Credentials::new(id, secret, None, None, "taskyard-test"))
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(config)
}

async fn delete_prefix(store: &Store, prefix: &str) {
    let keys: Vec<String> = store.list(prefix).try_collect().await.unwrap();
    futures::stream::iter(keys)
        .for_each_concurrent(16, |key| async move { store.delete(&key).await.unwrap() })
        .await;
}

async fn body(store: &Store, key: &str) -> Option<Bytes> {
    store.get(key, 64 << 20).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conditional_create_never_replaces_an_object() {
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    let prefix = run_prefix("cond");
    let key = format!("{prefix}object");

    let first = store
        .put_if_absent(&key, Bytes::from_static(b"first"), "text/plain")
        .await
        .unwrap();
    assert_eq!(first, PutOutcome::Created);
    let second = store
        .put_if_absent(&key, Bytes::from_static(b"second"), "text/plain")
        .await
        .unwrap();
    assert_eq!(
        second,
        PutOutcome::AlreadyExists,
        "If-None-Match: * answers 412 on an existing key"
    );
    assert_eq!(body(&store, &key).await.unwrap(), "first");

    // A plain put replaces; after a delete the key can be created again.
    store
        .put(&key, Bytes::from_static(b"third"), "text/plain")
        .await
        .unwrap();
    assert_eq!(body(&store, &key).await.unwrap(), "third");
    store.delete(&key).await.unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    let again = store
        .put_if_absent(&key, Bytes::from_static(b"fourth"), "text/plain")
        .await
        .unwrap();
    assert_eq!(again, PutOutcome::Created);
    delete_prefix(&store, &prefix).await;
}

/// Six writers create each of 20 keys at once. On RGW exactly one gets `Created` and its body
/// is the object's (measured: RGW 16.2 creates the head object exclusively). s3s-fs checks
/// for the object and then writes it, not atomically: several may get `Created`, and the
/// object holds one of their bodies whole.
#[tokio::test(flavor = "multi_thread")]
async fn racing_conditional_creates_leave_one_whole_object() {
    const KEYS: usize = 20;
    const WRITERS: usize = 6;
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    let prefix = run_prefix("race");
    let mut several_created = 0;
    for k in 0..KEYS {
        let key = format!("{prefix}{k:02}");
        let writes = (0..WRITERS).map(|w| {
            let (store, key) = (store.clone(), key.clone());
            async move {
                let body = Bytes::from(format!("writer {w} of key {k}, {}", "x".repeat(w * 1000)));
                let outcome = store.put_if_absent(&key, body.clone(), "text/plain").await.unwrap();
                (outcome, body)
            }
        });
        let results = futures::future::join_all(writes).await;
        let created: Vec<&Bytes> = results
            .iter()
            .filter(|(o, _)| *o == PutOutcome::Created)
            .map(|(_, b)| b)
            .collect();
        assert!(!created.is_empty(), "{key}: no writer created it");
        let stored = body(&store, &key).await.expect("the object exists");
        assert!(
            results.iter().any(|(_, b)| *b == stored),
            "{key}: the object is not any one writer's whole body"
        );
        if env.store_kind() == StoreKind::Rgw {
            assert_eq!(created.len(), 1, "{key}: exactly one writer creates it");
            assert_eq!(*created[0], stored, "{key}: the object is the creator's");
        }
        several_created += usize::from(created.len() > 1);
    }
    eprintln!(
        "{:?}: {several_created} of {KEYS} keys had more than one writer told Created",
        env.store_kind()
    );
    delete_prefix(&store, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_is_in_byte_order_bounded_by_the_prefix_whatever_the_key_holds() {
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    let prefix = run_prefix("list");
    // Keys S3 clients must encode, and a sibling run prefix that shares our prefix's text.
    let names = [
        "a", "a b", "a+b", "a%2Fb", "a~", "a=b&c", "B", "b/c", "b/d/e", "\u{e4}", "z",
    ];
    let keys: Vec<String> = names.iter().map(|n| format!("{prefix}{n}")).collect();
    let outside = format!("{}-sibling/x", prefix.trim_end_matches('/'));
    for key in keys.iter().chain([&outside]) {
        store.put(key, Bytes::from_static(b"x"), "text/plain").await.unwrap();
    }
    let mut sorted = keys.clone();
    sorted.sort(); // byte order, as S3 lists
    let listed: Vec<String> = store.list(&prefix).try_collect().await.unwrap();
    assert_eq!(listed, sorted);
    let under_a: Vec<String> = store.list(&format!("{prefix}a")).try_collect().await.unwrap();
    let expected: Vec<String> = sorted
        .iter()
        .filter(|k| k.starts_with(&format!("{prefix}a")))
        .cloned()
        .collect();
    assert_eq!(under_a, expected);
    assert_eq!(
        store.first_with_prefix(&format!("{prefix}b/")).await.unwrap(),
        Some(format!("{prefix}b/c"))
    );
    assert_eq!(store.first_with_prefix(&format!("{prefix}q")).await.unwrap(), None);
    // A match at the prefix's own level, and one found only deeper (the second listing).
    assert_eq!(
        store.first_with_prefix(&format!("{prefix}a")).await.unwrap(),
        Some(format!("{prefix}a"))
    );
    assert_eq!(
        store.first_with_prefix(&format!("{prefix}b")).await.unwrap(),
        Some(format!("{prefix}b/c"))
    );
    delete_prefix(&store, &prefix).await;
    store.delete(&outside).await.unwrap();
}

/// An object at `k` and another at `k/x`: one key is the other's "directory". RGW keeps
/// both; s3s-fs maps keys to files, and a file cannot also be a directory (500 InternalError).
/// So no Taskyard key may be another key's directory while s3s-fs is a test store.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_key_that_is_another_keys_directory() {
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    let prefix = run_prefix("dirfile");
    let (file, nested) = (format!("{prefix}k"), format!("{prefix}k/x"));
    store
        .put(&file, Bytes::from_static(b"file"), "text/plain")
        .await
        .unwrap();
    let nested_put = store.put(&nested, Bytes::from_static(b"nested"), "text/plain").await;
    match env.store_kind() {
        StoreKind::Rgw => {
            nested_put.unwrap();
            let listed: Vec<String> = store.list(&prefix).try_collect().await.unwrap();
            assert_eq!(listed, [file.clone(), nested.clone()]);
            assert_eq!(body(&store, &file).await.unwrap(), "file");
        }
        StoreKind::S3sFs => {
            let err = nested_put.expect_err("s3s-fs cannot store k/x beside the file k");
            assert!(err.to_string().contains("InternalError"), "{err}");
            assert_eq!(body(&store, &file).await.unwrap(), "file");
        }
    }
    delete_prefix(&store, &prefix).await;
}

/// ListObjectsV2 as the store pages it: `max-keys` pages with continuation tokens, and the
/// delimiter's common prefixes, each counting as one entry of a page.
#[tokio::test(flavor = "multi_thread")]
async fn list_objects_v2_pages_and_groups_by_delimiter() {
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    let client = raw_client(&env).await;
    let bucket = env.get("TASKYARD_S3_BUCKET").to_string();
    let prefix = run_prefix("pages");
    let names = ["d1/x", "d1/y", "d2/z", "f1", "f2"];
    for n in names {
        store
            .put(&format!("{prefix}{n}"), Bytes::from_static(b"x"), "text/plain")
            .await
            .unwrap();
    }

    let mut token = None;
    let mut pages = Vec::new();
    loop {
        let out = client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&prefix)
            .max_keys(2)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        let keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        let truncated = out.is_truncated().unwrap_or(false);
        pages.push(keys);
        token = out.next_continuation_token().map(str::to_string);
        if !truncated {
            assert!(token.is_none(), "a last page with a continuation token");
            break;
        }
        assert!(token.is_some(), "a truncated page without a continuation token");
        assert!(pages.len() <= names.len(), "paging does not end");
    }
    let expected: Vec<Vec<String>> = [&names[0..2], &names[2..4], &names[4..5]]
        .iter()
        .map(|p| p.iter().map(|n| format!("{prefix}{n}")).collect())
        .collect();
    assert_eq!(pages, expected);

    let grouped = client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(&prefix)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = grouped.contents().iter().filter_map(|o| o.key()).collect();
    let dirs: Vec<&str> = grouped.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(files, [format!("{prefix}f1"), format!("{prefix}f2")]);
    assert_eq!(dirs, [format!("{prefix}d1/"), format!("{prefix}d2/")]);

    // With a delimiter, a page of 3 holds two common prefixes and one key.
    let first = client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(&prefix)
        .delimiter("/")
        .max_keys(3)
        .send()
        .await
        .unwrap();
    assert_eq!(first.common_prefixes().len() + first.contents().len(), 3);
    assert_eq!(first.is_truncated(), Some(true));

    // start-after resumes after any key, present or not.
    let after = client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(&prefix)
        .start_after(format!("{prefix}d1/xx"))
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        [
            format!("{prefix}d1/y"),
            format!("{prefix}d2/z"),
            format!("{prefix}f1"),
            format!("{prefix}f2")
        ]
    );
    delete_prefix(&store, &prefix).await;
}

async fn upload_parts(client: &Client, bucket: &str, key: &str, parts: &[Bytes]) -> (String, CompletedMultipartUpload) {
    let upload = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap().to_string();
    let mut done = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let number = i as i32 + 1;
        let out = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let parts = CompletedMultipartUpload::builder().set_parts(Some(done)).build();
    (id, parts)
}

/// Multipart uploads as a streamed write to S3 would use them: parts of at least 5 MiB but
/// the last; a smaller one is refused at completion (both servers); an aborted upload leaves
/// nothing. A conditional completion (`If-None-Match: *` on CompleteMultipartUpload) is
/// honoured by s3s-fs and ignored by RGW 16.2, which replaces the object: a streamed
/// create-if-absent cannot rely on it there.
#[tokio::test(flavor = "multi_thread")]
async fn multipart_uploads() {
    const MIB: usize = 1 << 20;
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    let client = raw_client(&env).await;
    let bucket = env.get("TASKYARD_S3_BUCKET").to_string();
    let prefix = run_prefix("multipart");

    // Two parts, 5 MiB and 1 KiB: one object of both, with a multipart ETag.
    let key = format!("{prefix}whole");
    let first = Bytes::from((0..5 * MIB).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let last = Bytes::from(vec![7u8; 1024]);
    let (id, parts) = upload_parts(&client, &bucket, &key, &[first.clone(), last.clone()]).await;
    let done = client
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .upload_id(&id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    let head = client.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert!(
        head.e_tag().unwrap().trim_matches('"').ends_with("-2"),
        "{:?}",
        head.e_tag()
    );
    // RGW 16.2 answers the completion with an empty <ETag/>: only HEAD tells it.
    let expected_completion_etag = match env.store_kind() {
        StoreKind::Rgw => "",
        StoreKind::S3sFs => head.e_tag().unwrap(),
    };
    assert_eq!(done.e_tag(), Some(expected_completion_etag));
    let stored = body(&store, &key).await.unwrap();
    assert_eq!(stored.len(), 5 * MIB + 1024);
    assert!(stored[..5 * MIB] == first[..] && stored[5 * MIB..] == last[..]);

    // A part under 5 MiB that is not the last: refused when completing.
    let small = format!("{prefix}small");
    let tiny = Bytes::from_static(b"tiny part");
    let (id, parts) = upload_parts(&client, &bucket, &small, &[tiny.clone(), tiny.clone()]).await;
    let err = client
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(&small)
        .upload_id(&id)
        .multipart_upload(parts)
        .send()
        .await
        .expect_err("a 9-byte first part is too small");
    assert_eq!(err.code(), Some("EntityTooSmall"), "{err:?}");
    let _ = client
        .abort_multipart_upload()
        .bucket(&bucket)
        .key(&small)
        .upload_id(&id)
        .send()
        .await;
    assert_eq!(store.size(&small).await.unwrap(), None);

    // Completing with If-None-Match: * over an existing object.
    let (id, parts) = upload_parts(&client, &bucket, &key, &[Bytes::from_static(b"replacement")]).await;
    let conditional = client
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .upload_id(&id)
        .if_none_match("*")
        .multipart_upload(parts)
        .send()
        .await;
    match env.store_kind() {
        StoreKind::S3sFs => {
            let err = conditional.expect_err("s3s-fs honours If-None-Match on completion");
            assert_eq!(err.code(), Some("PreconditionFailed"), "{err:?}");
            assert_eq!(store.size(&key).await.unwrap(), Some((5 * MIB + 1024) as u64));
            let _ = client
                .abort_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&id)
                .send()
                .await;
        }
        StoreKind::Rgw => {
            conditional.expect("RGW 16.2 ignores If-None-Match on CompleteMultipartUpload");
            assert_eq!(
                body(&store, &key).await.unwrap(),
                "replacement",
                "and replaces the object"
            );
        }
    }

    // An aborted upload leaves no object, cannot be completed, and RGW no longer lists it
    // (s3s-fs does not implement ListMultipartUploads: 501).
    let aborted = format!("{prefix}aborted");
    let (id, parts) = upload_parts(&client, &bucket, &aborted, std::slice::from_ref(&first)).await;
    client
        .abort_multipart_upload()
        .bucket(&bucket)
        .key(&aborted)
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(store.size(&aborted).await.unwrap(), None);
    let late = client
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(&aborted)
        .upload_id(&id)
        .multipart_upload(parts)
        .send()
        .await
        .expect_err("an aborted upload cannot be completed");
    eprintln!(
        "{:?}: completing an aborted upload: {:?}",
        env.store_kind(),
        late.code()
    );
    assert_eq!(store.size(&aborted).await.unwrap(), None);
    let uploads = client
        .list_multipart_uploads()
        .bucket(&bucket)
        .prefix(&prefix)
        .send()
        .await;
    match env.store_kind() {
        StoreKind::Rgw => {
            let uploads = uploads.unwrap();
            let open: Vec<&str> = uploads.uploads().iter().filter_map(|u| u.upload_id()).collect();
            assert!(
                !open.contains(&id.as_str()),
                "the aborted upload is still listed: {open:?}"
            );
        }
        StoreKind::S3sFs => {
            let err = uploads.expect_err("s3s-fs 0.14 does not list multipart uploads");
            assert_eq!(err.code(), Some("NotImplemented"), "{err:?}");
        }
    }
    delete_prefix(&store, &prefix).await;
}
