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

#[test]
fn queries_embedded_together_from_many_threads_match_one_by_one() {
    let model = std::sync::Arc::new(model());
    let batcher = std::sync::Arc::new(crate::QueryBatcher::new(std::sync::Arc::clone(&model)));
    let texts: Vec<String> = (0..12)
        .map(|index| format!("сколько стоит тариф номер {index}?"))
        .collect();
    let threads: Vec<_> = texts
        .iter()
        .cloned()
        .map(|text| {
            let batcher = std::sync::Arc::clone(&batcher);
            std::thread::spawn(move || (text.clone(), batcher.embed_query(&text)))
        })
        .collect();
    for thread in threads {
        let (text, batched) = thread.join().expect("the thread ends");
        let alone = model.embed_query(&text);
        assert!(
            crate::cosine(&batched, &alone) > 0.9999,
            "{text}: batched and alone differ"
        );
    }
}
