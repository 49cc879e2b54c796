//! Unit tests of import, chunking, text analysis and the retriever, as tables and snapshots.

use closer_model::{Audience, DocumentFormat, Lang};
use expect_test::expect;

use crate::chunk::chunk_document;
use crate::import::split_front_matter;
use crate::text::{analyze_question, stems};
use crate::{parse_document, AudienceFilter, Retriever, RetrieverSettings, SkipReason};

fn document(source: &str, text: &str) -> closer_model::KnowledgeDocument {
    parse_document(source, text.as_bytes()).expect("a valid test document")
}

#[test]
fn front_matter_gives_title_lang_tags_and_audience() {
    let text = "---\ntitle: \"Тарифы\"\nlang: ru\ntags: [цены, тарифы]\naudience: internal\nowner: x\n---\n# Другое\nТекст.";
    let parsed = document("tarify.md", text);
    assert_eq!(parsed.title, "Тарифы");
    assert_eq!(parsed.lang, Some(Lang::Ru));
    assert_eq!(parsed.tags, vec!["цены".to_string(), "тарифы".to_string()]);
    assert_eq!(parsed.audience, Audience::Internal);
    assert_eq!(parsed.format, DocumentFormat::Markdown);
    assert_eq!(
        parsed.content, text,
        "the whole text is kept, front matter included"
    );

    let (_, body) = split_front_matter("---\ntitle: no closing line\nText");
    assert_eq!(
        body, "---\ntitle: no closing line\nText",
        "unclosed front matter is text"
    );
}

#[test]
fn title_falls_back_to_first_heading_then_file_name() {
    assert_eq!(document("a.md", "# Heading\nText").title, "Heading");
    assert_eq!(
        document("dir/price-list.txt", "Just text").title,
        "price list"
    );
    assert_eq!(document("en.md", "Plain English text").lang, Some(Lang::En));
}

#[test]
fn files_are_skipped_with_a_reason() {
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "logo.png",
            b"\x89PNG",
            "unsupported file type .png; use .md, .txt or .csv",
        ),
        (
            "README",
            b"text",
            "unsupported file type (no extension); use .md, .txt or .csv",
        ),
        (
            "cp1251.md",
            b"\xcf\xf0\xe8\xe2\xe5\xf2",
            "not UTF-8 text; save the file as UTF-8",
        ),
        ("empty.md", b"  \n\n", "empty file"),
        ("only-front.md", b"---\ntitle: x\n---\n", "empty file"),
        (
            "header.csv",
            b"name,price\n",
            "invalid CSV: a header row but no data rows",
        ),
    ];
    for (source, bytes, reason) in cases {
        let skipped = parse_document(source, bytes).expect_err(source);
        assert_eq!(skipped.to_string(), *reason, "{source}");
    }
    assert_eq!(parse_document("x.md", b""), Err(SkipReason::Empty));
}

#[test]
fn csv_rows_become_sentences_without_codes() {
    let csv =
        "код,наименование,цена (руб.),срок\nSK-1,Сканер \"Про\",4590,—\nLP-2,Принтер,14900,3 дня\n";
    let chunks = chunk_document(&document("price.csv", csv));
    let units: Vec<&str> = chunks.iter().map(|chunk| chunk.units[0].as_str()).collect();
    expect![[r#"
        [
            "Сканер \"Про\": цена (руб.) 4590",
            "Принтер: цена (руб.) 14900, срок 3 дня",
        ]
    "#]]
    .assert_debug_eq(&units);
}

#[test]
fn markdown_is_chunked_by_heading_sections_with_tables_and_lists() {
    let text = "# Тарифы\n\nВступление. Вторая фраза про **цены**.\n\n## Сравнение\n\n| | Старт | Бизнес |\n| --- | --- | --- |\n| Склады | 1 | до 3 |\n\n### Бизнес\n\n- до 3 складов;\n- API и [вебхуки](https://example.com/api).\n\nВопрос?\nОтвет.\n";
    let chunks = chunk_document(&document("tarify.md", text));
    expect![[r#"
        [
            Chunk {
                headings: [],
                units: [
                    "Вступление.",
                    "Вторая фраза про цены.",
                ],
                blocks: [
                    0,
                    0,
                ],
            },
            Chunk {
                headings: [
                    "Сравнение",
                ],
                units: [
                    "Склады: Старт — 1; Бизнес — до 3",
                ],
                blocks: [
                    0,
                ],
            },
            Chunk {
                headings: [
                    "Сравнение",
                    "Бизнес",
                ],
                units: [
                    "до 3 складов;",
                    "API и вебхуки (https://example.com/api).",
                    "Вопрос?",
                    "Ответ.",
                ],
                blocks: [
                    0,
                    0,
                    1,
                    1,
                ],
            },
        ]
    "#]]
    .assert_debug_eq(&chunks);
}

#[test]
fn tokens_are_stemmed_per_script_and_read_yo_as_ye() {
    let cases = [
        ("складов складу склад", "склад склад склад"),
        ("Ёлка елки", "елк елк"),
        (
            "warehouses warehouse Integrations",
            "warehous warehous integr",
        ),
        ("12 900 ₽ и 12,900 RUB", "12900 и 12900 rub"),
        ("СК-220BT", "ck220bt"),
    ];
    for (text, expected) in cases {
        assert_eq!(stems(text).join(" "), expected, "{text}");
    }
}

#[test]
fn questions_drop_stopwords_and_use_the_lexicon() {
    let analyzed = analyze_question("скок стоит тсд у вас?");
    assert!(analyzed.wants_number, "скок is сколько");
    let words: Vec<&str> = analyzed
        .terms
        .iter()
        .map(|term| term.word.as_str())
        .collect();
    assert_eq!(words, vec!["стоит", "тсд"]);
    assert!(analyze_question("а у вас есть?").terms.is_empty());
    assert!(analyze_question("интеграция с Zapier есть?").terms[1].is_name_like);
}

fn tiny_retriever() -> Retriever {
    let documents = vec![
        document(
            "prices.csv",
            "наименование,цена (руб.),гарантия (мес.)\nБеспроводной сканер,9490,24\nПринтер этикеток,14900,12\n",
        ),
        document(
            "delivery.md",
            "# Доставка\n\nДоставляем по всей России транспортными компаниями. По Москве курьер привезёт заказ на следующий день за 590 ₽.\n",
        ),
        document(
            "internal.md",
            "---\naudience: internal\n---\n# Скидки\n\nМенеджер может дать скидку до 10% на сканеры.\n",
        ),
    ];
    Retriever::build(&documents, &RetrieverSettings::default()).expect("an in-memory index")
}

#[test]
fn answer_finds_a_price_exactly_and_declines_an_unrelated_question() {
    let retriever = tiny_retriever();
    let answer = retriever
        .answer(
            "скока стоит беспроводной сканер",
            Lang::Ru,
            AudienceFilter::PublicOnly,
        )
        .expect("the price row answers");
    assert!(answer.text.contains("9490"), "{}", answer.text);
    assert!(
        answer.text.contains("Беспроводной сканер"),
        "{}",
        answer.text
    );
    assert_eq!(answer.citations[0].source, "prices.csv");
    assert!(answer.text.chars().count() <= 600);

    let delivery = retriever
        .answer(
            "доставка по москве сколько",
            Lang::Ru,
            AudienceFilter::PublicOnly,
        )
        .expect("the delivery sentence answers");
    assert!(delivery.text.contains("590"), "{}", delivery.text);

    for unrelated in [
        "интеграция с мегамаркетом есть?",
        "у вас есть RFID метки?",
        "do you support SAP?",
    ] {
        assert_eq!(
            retriever.answer(unrelated, Lang::Ru, AudienceFilter::PublicOnly),
            None,
            "{unrelated}"
        );
    }
}

#[test]
fn internal_documents_are_only_for_the_sales_team() {
    let retriever = tiny_retriever();
    let question = "какую скидку может дать менеджер";
    assert!(retriever
        .answer(question, Lang::Ru, AudienceFilter::PublicOnly)
        .is_none_or(|answer| !answer.text.contains("10%")));
    let internal = retriever
        .answer(question, Lang::Ru, AudienceFilter::All)
        .expect("the sales team sees internal notes");
    assert!(internal.text.contains("10%"));
    let passages = retriever.search("скидка менеджер", AudienceFilter::All, 5);
    assert_eq!(passages[0].source, "internal.md");
}

#[test]
fn model_codes_match_whatever_script_their_letters_are_written_in() {
    let cases = [
        ("Терминал Т-60", "термина t60"),
        ("terminal T-60", "termin t60"),
        ("т60 и T60", "t60 и t60"),
        ("сканер СК-220 BT", "сканер ck220 bt"),
        ("срок 2-3 недели", "срок 2 3 недел"),
        ("Wi-Fi", "wi fi"),
        ("4й склад", "4й склад"),
    ];
    for (text, expected) in cases {
        assert_eq!(stems(text).join(" "), expected, "{text}");
    }
}

#[test]
fn a_city_the_kb_does_not_list_is_a_place_not_an_unknown_subject() {
    let analyzed = analyze_question("доставка в Новосибирск платная?");
    let city = analyzed
        .terms
        .iter()
        .find(|term| term.word == "новосибирск")
        .expect("the city is a term");
    assert!(city.is_place && !city.is_name_like);
    let retriever = tiny_retriever();
    for question in ["доставите в Новосибирск?", "а в Казань доставляете?"]
    {
        let answer = retriever
            .answer(question, Lang::Ru, AudienceFilter::PublicOnly)
            .unwrap_or_else(|| panic!("a city is not an unknown subject: {question}"));
        assert!(answer.text.contains("России"), "{}", answer.text);
    }
    // The English name reaches a Russian text that names the city in Russian.
    let moscow = retriever
        .answer(
            "delivery cost in Moscow",
            Lang::En,
            AudienceFilter::PublicOnly,
        )
        .expect("Moscow is Москва");
    assert!(moscow.text.contains("590"), "{}", moscow.text);
    assert_eq!(
        retriever.answer(
            "интеграция с мегамаркетом в Казани есть?",
            Lang::Ru,
            AudienceFilter::PublicOnly
        ),
        None,
        "an unknown subject stays unknown beside a city"
    );
}

fn one_document_retriever(text: &str, max_answer_units: usize) -> Retriever {
    let settings = RetrieverSettings {
        max_answer_units,
        ..RetrieverSettings::default()
    };
    Retriever::build(&[document("plans.md", text)], &settings).expect("an in-memory index")
}

#[test]
fn a_comparison_answer_covers_both_sides() {
    let retriever = one_document_retriever(
        "# Тарифы\n\nТариф Альфа подходит небольшому складу.\n\nТариф Альфа включает один склад и отчёты по складу.\n\nТариф Альфа можно оплатить картой.\n\nТариф Бета рассчитан на сеть из десяти складов.\n",
        3,
    );
    let answer = retriever
        .answer(
            "тариф альфа или бета?",
            Lang::Ru,
            AudienceFilter::PublicOnly,
        )
        .expect("the plans are described");
    assert!(answer.text.contains("Альфа"), "{}", answer.text);
    assert!(
        answer.text.contains("Бета"),
        "{}\n{}",
        answer.text,
        retriever.explain("тариф альфа или бета?")
    );
}

#[test]
fn a_price_question_prefers_the_unit_with_a_money_figure() {
    let retriever = one_document_retriever(
        "# Сканер\n\nСканер Орбита лёгкий, сканер Орбита читает коды с экрана.\n\nСтоимость: сканер Орбита — 4 590 ₽.\n",
        1,
    );
    let answer = retriever
        .answer(
            "сколько стоит сканер орбита",
            Lang::Ru,
            AudienceFilter::PublicOnly,
        )
        .expect("the scanner is described");
    assert!(answer.text.contains("4 590"), "{}", answer.text);
}

#[test]
fn a_comparison_of_table_columns_shows_the_rows_where_they_differ() {
    let retriever = one_document_retriever(
        "# Тарифы\n\n| | Альфа | Бета | Гамма |\n| --- | --- | --- | --- |\n| Склады | 1 | до 3 | до 10 |\n| Отчёты | есть | есть | есть |\n| Заказы | до 2 000 | до 20 000 | без ограничений |\n",
        5,
    );
    let answer = retriever
        .answer(
            "чем альфа отличается от беты",
            Lang::Ru,
            AudienceFilter::PublicOnly,
        )
        .expect("the plans are compared");
    expect![[r#"
        Склады: Альфа — 1; Бета — до 3
        Заказы: Альфа — до 2 000; Бета — до 20 000"#]]
    .assert_eq(&answer.text);
}

#[test]
fn lexicon_phrases_of_several_words_become_their_standard_words() {
    let analyzed = analyze_question("how long has the company been around?");
    let words: Vec<&str> = analyzed
        .terms
        .iter()
        .map(|term| term.word.as_str())
        .collect();
    assert_eq!(words, vec!["company", "founded"]);
    assert!(analyze_question("чем альфа отличается от беты").wants_comparison);
    assert!(!analyze_question("сколько стоит альфа").wants_comparison);
}

/// The retriever of a small KB with the real embedding model.
fn dense_retriever() -> Retriever {
    let documents = vec![
        document(
            "delivery.md",
            "# Доставка\n\nДоставляем по всей России транспортными компаниями. По Москве курьер привезёт заказ на следующий день за 590 ₽.\n",
        ),
        document(
            "support.md",
            "# Поддержка\n\nСлужба поддержки отвечает в чате с 9 до 21 по Москве, без выходных.\n\n## Обучение\n\nНовых сотрудников клиента обучаем на двух вебинарах бесплатно.\n",
        ),
        document(
            "faq.md",
            "# Частые вопросы\n\nМожно ли вернуть деньги?\nДа, в течение 14 дней после оплаты мы вернём всю сумму.\n",
        ),
    ];
    let retriever =
        Retriever::build(&documents, &RetrieverSettings::default()).expect("an in-memory index");
    let model = std::sync::Arc::new(closer_embed::test_model());
    let texts = retriever.embedding_texts();
    let borrowed: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = model.embed_passages(&borrowed);
    retriever
        .with_embeddings(model, &vectors)
        .expect("one vector per unit")
}

#[test]
fn with_embeddings_a_paraphrase_is_answered_by_meaning() {
    let retriever = dense_retriever();
    // Worded otherwise than the sentence that answers it.
    let answer = retriever
        .answer(
            "когда курьер привезёт заказ по Москве?",
            Lang::Ru,
            AudienceFilter::PublicOnly,
        )
        .unwrap_or_else(|| {
            panic!(
                "the delivery sentence answers: {:?}",
                retriever.signals(
                    "когда курьер привезёт заказ по Москве?",
                    Lang::Ru,
                    AudienceFilter::PublicOnly
                )
            )
        });
    assert!(answer.text.contains("590"), "{}", answer.text);
    assert_eq!(answer.citations[0].source, "delivery.md");
    // The FAQ's question line is never the answer; its answer is.
    let refund = retriever
        .answer(
            "можно ли вернуть деньги, если передумаю?",
            Lang::Ru,
            AudienceFilter::PublicOnly,
        )
        .expect("the FAQ answers");
    assert!(refund.text.contains("14 дней"), "{}", refund.text);
    assert!(!refund.text.contains('?'), "{}", refund.text);
}

#[test]
fn with_embeddings_a_question_the_kb_cannot_answer_is_declined() {
    let retriever = dense_retriever();
    for unrelated in [
        "сколько у вас сотрудников в офисе?",
        "do you integrate with SAP?",
    ] {
        let signals = retriever.signals(unrelated, Lang::Ru, AudienceFilter::PublicOnly);
        assert_eq!(
            retriever.answer(unrelated, Lang::Ru, AudienceFilter::PublicOnly),
            None,
            "{unrelated}: {signals:?}"
        );
    }
}

#[test]
fn embeddings_that_do_not_fit_the_units_are_refused() {
    let retriever = tiny_retriever();
    let model = std::sync::Arc::new(closer_embed::test_model());
    let error = retriever
        .with_embeddings(model, &[vec![0.0; 384]])
        .err()
        .expect("one vector for several units is refused");
    assert!(error.to_string().contains("vectors"), "{error}");
}

#[test]
fn the_best_sentence_is_shown_with_the_rest_of_its_faq_answer_but_never_the_question() {
    let retriever = one_document_retriever(
        "# FAQ\n\n**I rent my flat. Can you clean it when I move out?**\nYes. Order a deep cleaning and ask for a move-out report with photos. The report is free of charge.\n\n**Do you work on Sundays?**\nNo, Monday to Saturday only.\n",
        3,
    );
    let question = "is the move-out report with photos free";
    let answer = retriever
        .answer(question, Lang::En, AudienceFilter::PublicOnly)
        .expect("the FAQ answers it");
    assert!(
        answer
            .text
            .starts_with("Yes. Order a deep cleaning and ask for a move-out report with photos. The report is free of charge."),
        "{}\n{}",
        answer.text,
        retriever.explain(question)
    );
    assert!(!answer.text.contains("I rent my flat"), "{}", answer.text);
    assert!(!answer.text.contains("Can you clean"), "{}", answer.text);
}

#[test]
fn an_objection_is_answered_from_the_guide_and_only_when_there_is_one() {
    let prices = document(
        "prices.md",
        "---\ntitle: Цены\n---\n# Цены\nТариф «Старт» стоит 990 ₽ в месяц. Тариф «Бизнес» дешевле на год вперёд: 9 900 ₽.",
    );
    let guide = document(
        "guide.md",
        "---\ntitle: Памятка менеджеру\ntags: [продажи, возражения]\n---\n# «Дорого»\nСравните с часами, которые уходят на ручную работу: тариф окупается за два месяца.\n\n# «Уже работаем с другими»\nПеренесём ваши данные бесплатно за один день.",
    );
    let internal_guide = document(
        "internal-guide.md",
        "---\ntitle: Возражения (внутреннее)\naudience: internal\n---\n# Дорого\nМожно дать скидку 15%.",
    );
    let retriever = Retriever::build(
        &[prices.clone(), guide, internal_guide.clone()],
        &RetrieverSettings::default(),
    )
    .expect("an in-memory index");
    let answer = retriever
        .guide_answer(
            "дороговато для нас. дорого, цена",
            "дороговато для нас",
            Lang::Ru,
        )
        .expect("the guide answers");
    assert!(answer.text.contains("окупается"), "{}", answer.text);
    assert_eq!(answer.citations[0].source, "guide.md");

    // No public guide: nothing, and the usual search answers instead.
    let without = Retriever::build(&[prices, internal_guide], &RetrieverSettings::default())
        .expect("an in-memory index");
    assert!(without
        .guide_answer("дорого, цена", "дорого", Lang::Ru)
        .is_none());
}

#[test]
fn a_ranking_weight_is_overridden_alone_and_an_unknown_one_is_refused() {
    let settings: RetrieverSettings =
        serde_json::from_str(r#"{"ranking": {"price": 0.5}}"#).expect("a partial ranking parses");
    assert_eq!(settings.ranking.price, 0.5);
    assert_eq!(
        settings.ranking.meaning,
        RetrieverSettings::default().ranking.meaning
    );
    assert!(serde_json::from_str::<RetrieverSettings>(r#"{"ranking": {"prize": 0.5}}"#).is_err());
}
