//! Tests that need the real model file and the crate's internals: the tokenizer's ids.

use serde::Deserialize;

use crate::Model;

pub(crate) fn model() -> Model {
    crate::test_model()
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
