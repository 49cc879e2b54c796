//! The dialog against the shipped playbook: objection tables, turn scenarios, a whole
//! conversation as a snapshot, and odd input that must not break it.

use closer_dialog::{
    detect_objections, step, ConfigError, DialogConfig, DialogState, Effect, Input, Intent, Step,
    MAX_REPLY_CHARS,
};
use closer_model::{
    Citation, InboundContent, KnowledgeAnswer, Lang, ObjectionKind, Phone, ReplyKind,
};
use expect_test::expect;

const PLAYBOOK: &str = include_str!("../../../config/playbook.toml");

fn config() -> DialogConfig {
    DialogConfig::from_toml_str(PLAYBOOK).expect("the shipped playbook is valid")
}

fn knowledge(text: &str) -> KnowledgeAnswer {
    KnowledgeAnswer {
        text: text.to_owned(),
        citations: vec![Citation {
            title: "Тарифы".to_owned(),
            source: "tarify.md".to_owned(),
        }],
        score: 3.5,
    }
}

fn text(message: &str, answer: Option<&str>) -> Input {
    Input {
        content: InboundContent::Text {
            text: message.to_owned(),
        },
        sender_name: None,
        knowledge: answer.map(knowledge),
        meaning: Vec::new(),
    }
}

/// Runs the messages in order and returns every step.
fn run(config: &DialogConfig, inputs: &[Input]) -> Vec<Step> {
    let mut state = DialogState::default();
    let mut steps = Vec::new();
    for input in inputs {
        let result = step(config, state, input);
        state = result.state.clone();
        steps.push(result);
    }
    steps
}

fn count_effects(steps: &[Step], matches: fn(&Effect) -> bool) -> usize {
    steps
        .iter()
        .flat_map(|step| step.effects.iter())
        .filter(|effect| matches(effect))
        .count()
}

fn reply_chars(step: &Step) -> usize {
    let texts: usize = step
        .replies
        .iter()
        .map(|reply| reply.text.chars().count())
        .sum();
    texts + 2 * step.replies.len().saturating_sub(1)
}

#[test]
fn every_playbook_in_config_loads() {
    let config = config();
    assert_eq!(config.objections.len(), ObjectionKind::ALL.len());
    assert_eq!(config.qualification.len(), 4);
}

#[test]
fn a_broken_playbook_is_rejected_with_its_reason() {
    let unknown_key = PLAYBOOK.replace("[persona]", "[persona]\nmood = \"happy\"");
    assert!(matches!(
        DialogConfig::from_toml_str(&unknown_key),
        Err(ConfigError::Syntax(_))
    ));
    let bad_pattern = PLAYBOOK.replace(r"'\bдорог'", r"'(дорог'");
    assert!(matches!(
        DialogConfig::from_toml_str(&bad_pattern),
        Err(ConfigError::Pattern { .. })
    ));
    let empty_phrase = PLAYBOOK.replace(
        r#"rating_thanks = { ru = "Спасибо за оценку!""#,
        r#"rating_thanks = { ru = " ""#,
    );
    assert!(matches!(
        DialogConfig::from_toml_str(&empty_phrase),
        Err(ConfigError::EmptyPhrase { .. })
    ));
    let unknown_kind = PLAYBOOK.replace("[objections.price]", "[objections.weather]");
    assert!(matches!(
        DialogConfig::from_toml_str(&unknown_kind),
        Err(ConfigError::UnknownObjection(_))
    ));
}

#[test]
fn objections_are_recognised() {
    use ObjectionKind::*;
    let config = config();
    let table: &[(&str, Lang, &[ObjectionKind])] = &[
        ("12900 в месяц это дорого для нас", Lang::Ru, &[Price]),
        (
            "дороговато, у конкурентов дешевле",
            Lang::Ru,
            &[Price, Competitor],
        ),
        ("too expensive for us tbh", Lang::En, &[Price]),
        ("сейчас сезон, до января не до этого", Lang::Ru, &[Timing]),
        (
            "it's peak season, maybe after the New Year",
            Lang::En,
            &[Timing],
        ),
        ("мы сейчас в Палетте", Lang::Ru, &[Competitor]),
        (
            "У нас уже стоит другая складская система",
            Lang::Ru,
            &[Competitor],
        ),
        (
            "We are currently using Yarus-Sklad",
            Lang::En,
            &[Competitor],
        ),
        ("а вы надежные вообще? вдруг закроетесь", Lang::Ru, &[Trust]),
        ("Is my data safe with you?", Lang::En, &[Trust]),
        ("надо подумать", Lang::Ru, &[NeedToThink]),
        ("let me think it over", Lang::En, &[NeedToThink]),
        ("денег сейчас на автоматизацию нет", Lang::Ru, &[NoBudget]),
        ("we don't have the budget this year", Lang::En, &[NoBudget]),
        ("мне надо согласовать с директором", Lang::Ru, &[Authority]),
        ("I need to run this by our CFO", Lang::En, &[Authority]),
        (
            "надо подумать и с шефом посоветоваться",
            Lang::Ru,
            &[NeedToThink, Authority],
        ),
        ("сколько стоит тариф бизнес", Lang::Ru, &[]),
        ("How long does it take to get started?", Lang::En, &[]),
        ("", Lang::Ru, &[]),
    ];
    for (message, lang, expected) in table {
        assert_eq!(
            detect_objections(&config, message, *lang),
            expected.to_vec(),
            "{message}"
        );
    }
}

#[test]
fn single_turns_get_the_right_kind_of_reply() {
    let config = config();
    let answer = Some("Тариф Бизнес стоит 12 900 ₽ в месяц.");
    let table: &[(&str, Option<&str>, &[ReplyKind])] = &[
        ("привет", answer, &[ReplyKind::Smalltalk]),
        ("спасибо, все понятно", answer, &[ReplyKind::Smalltalk]),
        ("ты бот или человек?", answer, &[ReplyKind::Smalltalk]),
        ("who am i talking to?", answer, &[ReplyKind::Smalltalk]),
        ("thanks a lot!", None, &[ReplyKind::Smalltalk]),
        (
            "сколько стоит бизнес",
            answer,
            &[ReplyKind::Answer, ReplyKind::Prompt],
        ),
        ("есть интеграция с авито?", None, &[ReplyKind::Declined]),
        (
            "у нас алкоголь, егаис поддерживаете",
            None,
            &[ReplyKind::Declined],
        ),
        (
            "дорого у вас",
            answer,
            &[ReplyKind::Objection, ReplyKind::Prompt],
        ),
        (
            "надо подумать",
            None,
            &[ReplyKind::Objection, ReplyKind::Prompt],
        ),
        (
            "позовите менеджера",
            answer,
            &[ReplyKind::Handoff, ReplyKind::Prompt],
        ),
        (
            "talk to a human",
            None,
            &[ReplyKind::Handoff, ReplyKind::Prompt],
        ),
        ("🙂", None, &[ReplyKind::Smalltalk]),
        ("меня зовут Иван", None, &[ReplyKind::Prompt]),
    ];
    for (message, knowledge, expected) in table {
        let result = step(&config, DialogState::default(), &text(message, *knowledge));
        let kinds: Vec<ReplyKind> = result.replies.iter().map(|reply| reply.kind).collect();
        assert_eq!(kinds, expected.to_vec(), "{message}");
        if matches!(expected.first(), Some(ReplyKind::Smalltalk)) {
            assert!(
                result
                    .replies
                    .iter()
                    .all(|reply| reply.citations.is_empty()),
                "{message}"
            );
        }
    }
}

#[test]
fn an_answer_keeps_the_knowledge_text_first_with_its_citations() {
    let config = config();
    let result = step(
        &config,
        DialogState::default(),
        &text(
            "сколько стоит бизнес",
            Some("Тариф Бизнес стоит 12 900 ₽ в месяц."),
        ),
    );
    assert_eq!(
        result.replies[0].text,
        "Тариф Бизнес стоит 12 900 ₽ в месяц."
    );
    assert_eq!(result.replies[0].citations[0].source, "tarify.md");
}

#[test]
fn a_decline_offers_a_person_and_pressing_it_hands_off() {
    let config = config();
    let declined = step(
        &config,
        DialogState::default(),
        &text("а с мегамаркетом есть интеграция?", None),
    );
    assert_eq!(declined.replies[0].kind, ReplyKind::Declined);
    let button = &declined.replies[0].quick_replies[0];
    let pressed = step(
        &config,
        declined.state,
        &Input {
            content: InboundContent::QuickReply {
                payload: button.payload.clone(),
            },
            sender_name: None,
            knowledge: None,
            meaning: Vec::new(),
        },
    );
    assert!(pressed
        .effects
        .iter()
        .any(|effect| matches!(effect, Effect::HandOff { .. })));
    assert_eq!(pressed.replies[0].kind, ReplyKind::Handoff);
}

#[test]
fn a_long_answer_stays_within_the_limit_and_prompts_only_when_they_fit() {
    let config = config();
    let long = "Это предложение из базы знаний. ".repeat(40);
    let almost_full: String = long.chars().take(600).collect();
    for answer in [long.as_str(), almost_full.as_str()] {
        let result = step(
            &config,
            DialogState::default(),
            &text("сколько стоит?", Some(answer)),
        );
        assert!(reply_chars(&result) <= MAX_REPLY_CHARS);
        assert_eq!(result.replies[0].kind, ReplyKind::Answer);
    }
}

#[test]
fn contact_details_create_exactly_one_lead_and_a_correction_updates_it() {
    let config = config();
    let steps = run(
        &config,
        &[
            text("нужен тсд для склада", Some("ТСД стоит 45 000 ₽.")),
            text("ок, перезвоните мне, Ольга, +7 903 111-22-33", None),
            text("ой, ошиблась номером, правильный +7 903 111-22-38", None),
            text("спасибо, жду", None),
        ],
    );
    assert_eq!(
        count_effects(&steps, |effect| matches!(effect, Effect::CreateLead(_))),
        1
    );
    let created = steps[1].effects.iter().find_map(|effect| match effect {
        Effect::CreateLead(lead) => Some(lead.clone()),
        _ => None,
    });
    let created = created.expect("the lead is created with the phone");
    assert_eq!(created.contact.name.as_deref(), Some("Ольга"));
    assert!(created.summary.contains("тсд"), "{}", created.summary);
    let updated = steps[2].effects.iter().find_map(|effect| match effect {
        Effect::UpdateLead(lead) => Some(lead.clone()),
        _ => None,
    });
    assert_eq!(
        updated.and_then(|lead| lead.contact.phone),
        Some(Phone::parse("+79031112238").expect("valid"))
    );
    assert_eq!(steps[1].replies[0].kind, ReplyKind::Confirmation);
}

#[test]
fn a_bare_name_after_the_contact_request_is_the_name() {
    let config = config();
    let steps = run(
        &config,
        &[
            text("Здравствуйте, запишите меня на демо", None),
            text("Пётр", None),
            text("мой номер +7 (921) 000-00-01", None),
        ],
    );
    assert!(steps[0].replies.iter().any(|reply| reply.request_contact));
    let lead = steps[2].effects.iter().find_map(|effect| match effect {
        Effect::CreateLead(lead) => Some(lead.clone()),
        _ => None,
    });
    assert_eq!(
        lead.and_then(|lead| lead.contact.name),
        Some("Пётр".to_owned())
    );
}

#[test]
fn no_contact_means_no_lead() {
    let config = config();
    let steps = run(
        &config,
        &[
            text("сколько стоит ваша система", Some("От 4 900 ₽ в месяц.")),
            text("а что входит в бизнес", Some("Два склада и API.")),
            text("а пробный есть?", Some("14 дней бесплатно.")),
            text("не, телефон давать не буду", None),
        ],
    );
    assert_eq!(
        count_effects(&steps, |effect| matches!(effect, Effect::CreateLead(_))),
        0
    );
    // Engaged after two answers: the contact request carries the channel's share button.
    assert!(steps[1].replies.iter().any(|reply| reply.request_contact));
    assert!(steps.last().expect("four steps").state.contact_refused);
}

#[test]
fn a_hand_off_is_emitted_once_and_then_asks_for_a_rating() {
    let config = config();
    let steps = run(
        &config,
        &[
            text("можно оператора?", None),
            text("позовите человека пожалуйста, вопрос по договору", None),
            text("5", None),
        ],
    );
    assert_eq!(
        count_effects(&steps, |effect| matches!(effect, Effect::HandOff { .. })),
        1
    );
    let rating_request = &steps[0].replies[1];
    assert_eq!(rating_request.quick_replies.len(), 5);
    assert_eq!(rating_request.quick_replies[4].payload, "rate:5");
    assert_eq!(steps[1].replies[0].kind, ReplyKind::Handoff);
    assert!(steps[2].effects.contains(&Effect::RecordRating(5)));
}

#[test]
fn a_rating_is_recorded_once_from_a_button_or_a_digit() {
    let config = config();
    let button = |value: &str| Input {
        content: InboundContent::QuickReply {
            payload: format!("rate:{value}"),
        },
        sender_name: None,
        knowledge: None,
        meaning: Vec::new(),
    };
    let steps = run(
        &config,
        &[
            text("Иван, +7 916 123-45-67, перезвоните", None),
            button("4"),
            button("5"),
        ],
    );
    assert_eq!(
        count_effects(&steps, |effect| matches!(effect, Effect::RecordRating(_))),
        1
    );
    assert!(steps[1].effects.contains(&Effect::RecordRating(4)));
    assert_eq!(steps[2].replies[0].kind, ReplyKind::Confirmation);
}

#[test]
fn a_shared_contact_creates_the_lead_with_its_name() {
    let config = config();
    let result = step(
        &config,
        DialogState::default(),
        &Input {
            content: InboundContent::SharedContact {
                phone: Phone::parse("+79161234567").expect("valid"),
                name: Some("Сергей".to_owned()),
            },
            sender_name: None,
            knowledge: None,
            meaning: Vec::new(),
        },
    );
    let lead = result.effects.iter().find_map(|effect| match effect {
        Effect::CreateLead(lead) => Some(lead),
        _ => None,
    });
    assert_eq!(
        lead.and_then(|lead| lead.contact.name.as_deref()),
        Some("Сергей")
    );
}

#[test]
fn the_language_follows_each_message_and_survives_digits() {
    let config = config();
    let steps = run(
        &config,
        &[
            text("hi there", None),
            text("12345", None),
            text("привет", None),
        ],
    );
    assert_eq!(steps[1].state.lang, Lang::En);
    assert_eq!(steps[2].state.lang, Lang::Ru);
}

#[test]
fn odd_input_never_breaks_the_dialog() {
    let config = config();
    let long = "а".repeat(10_000);
    let mixed = "📦🚚 ".repeat(3000);
    let digits = "1".repeat(5000);
    let odd = [
        "",
        " ",
        "\n\n\n",
        "?",
        "🙂",
        long.as_str(),
        mixed.as_str(),
        digits.as_str(),
        "+",
        "@@@",
        "rate:9",
        "((((((((",
        "\u{0}\u{1}\u{202e}",
        "Ǆ̶̛̖͎ͅ",
        "+7 (((( 916",
        "ИВАН ИВАНОВ ООО «» +7 916 123-45-67 a@b.ru",
    ];
    for message in odd {
        for knowledge in [None, Some("Ответ.")] {
            let steps = run(
                &config,
                &[text(message, knowledge), text(message, knowledge)],
            );
            for result in &steps {
                assert!(reply_chars(result) <= MAX_REPLY_CHARS, "{message:?}");
                assert!(!result.replies.is_empty(), "{message:?}");
            }
            let state_json = serde_json::to_string(&steps[1].state).expect("the state serialises");
            let back: DialogState = serde_json::from_str(&state_json).expect("and loads back");
            assert_eq!(back, steps[1].state);
        }
    }
    for content in [
        InboundContent::Start { campaign: None },
        InboundContent::Unsupported {
            what: "sticker".to_owned(),
        },
        InboundContent::QuickReply {
            payload: "rate:x".to_owned(),
        },
        InboundContent::QuickReply {
            payload: String::new(),
        },
    ] {
        let input = Input {
            content,
            sender_name: Some(String::new()),
            knowledge: None,
            meaning: Vec::new(),
        };
        let result = step(&config, DialogState::default(), &input);
        assert!(reply_chars(&result) <= MAX_REPLY_CHARS);
    }
}

#[test]
fn a_whole_conversation() {
    let config = config();
    let mut state = DialogState::default();
    let mut transcript = String::new();
    let inputs = [
        Input {
            content: InboundContent::Start {
                campaign: Some("autumn".to_owned()),
            },
            sender_name: Some("marina_b".to_owned()),
            knowledge: None,
            meaning: Vec::new(),
        },
        text(
            "у нас склад 150 м2, продаем на Ozon, около 40 заказов в день. какой тариф подойдет?",
            Some("Для одного склада подойдёт тариф Бизнес: 12 900 ₽ в месяц."),
        ),
        text(
            "12900 это дорого для нас",
            Some("Есть тариф Старт за 4 900 ₽ в месяц."),
        ),
        text("а с мегамаркетом интеграция есть?", None),
        text(
            "ок, давайте счет и кп. Марина Белова, компания Лайтлаб, +7 921 555-12-34",
            None,
        ),
        text("5", None),
    ];
    for input in &inputs {
        let result = step(&config, state, input);
        let message = match &input.content {
            InboundContent::Text { text } => text.clone(),
            other => format!("{other:?}"),
        };
        transcript.push_str(&format!("> {message}\n"));
        for reply in &result.replies {
            let buttons: Vec<&str> = reply
                .quick_replies
                .iter()
                .map(|button| button.payload.as_str())
                .collect();
            transcript.push_str(&format!("< {:?}: {}", reply.kind, reply.text));
            if !buttons.is_empty() {
                transcript.push_str(&format!(" {buttons:?}"));
            }
            transcript.push('\n');
        }
        for effect in &result.effects {
            match effect {
                Effect::Event { .. } => {}
                Effect::CreateLead(lead) | Effect::UpdateLead(lead) => {
                    transcript.push_str(&format!(
                        "! lead: {:?} {:?} {:?} | {} | qualified={}\n",
                        lead.contact.name,
                        lead.contact.phone.as_ref().map(Phone::as_str),
                        lead.contact.company,
                        lead.summary,
                        lead.qualified
                    ));
                }
                other => transcript.push_str(&format!("! {other:?}\n")),
            }
        }
        state = result.state;
    }
    expect![[r#"
        > Start { campaign: Some("autumn") }
        < Smalltalk: Здравствуйте! Я Ассистент, виртуальный помощник Demo Company. Отвечу на вопросы о продуктах, ценах, внедрении и условиях, помогу подобрать решение и передам заявку менеджеру. Расскажите, какая у вас задача?
        > у нас склад 150 м2, продаем на Ozon, около 40 заказов в день. какой тариф подойдет?
        < Answer: Для одного склада подойдёт тариф Бизнес: 12 900 ₽ в месяц.
        > 12900 это дорого для нас
        < Objection: Есть тариф Старт за 4 900 ₽ в месяц.
        < Prompt: Когда планируете запуск?
        > а с мегамаркетом интеграция есть?
        < Declined: К сожалению, точного ответа на этот вопрос у меня нет, не хочу вас ввести в заблуждение. Могу передать вопрос менеджеру, он ответит лично. ["handoff"]
        > ок, давайте счет и кп. Марина Белова, компания Лайтлаб, +7 921 555-12-34
        < Confirmation: Спасибо, Марина! Передал ваш запрос менеджеру, он свяжется с вами в рабочее время.
        < Prompt: Оцените, пожалуйста, насколько я вам помог: от 1 до 5. ["rate:1", "rate:2", "rate:3", "rate:4", "rate:5"]
        ! lead: Some("Марина Белова") Some("+79215551234") Some("Лайтлаб") | Запрос: у нас склад 150 м2, продаем на Ozon, около 40 заказов в день, какой тариф подойдет?; 12900 это дорого для нас; а с мегамаркетом интеграция есть?; давайте счет и кп. Квалификация: потребность — у нас склад 150 м2, продаем на Ozon, около 40 заказов в день. какой тариф подойдет?; объём — у нас склад 150 м2. Возражения: цена. | qualified=false
        > 5
        < Confirmation: Спасибо за оценку!
        ! RecordRating(5)
    "#]].assert_eq(&transcript);
}

#[test]
fn an_objection_adds_the_playbook_search_words_to_the_knowledge_query() {
    let config = config();
    let table = [
        (
            "денег щас нет вообще",
            Lang::Ru,
            "денег щас нет вообще. нет бюджета, нет денег",
        ),
        (
            "too pricey for us",
            Lang::En,
            "too pricey for us. too expensive, price",
        ),
        ("какие у вас тарифы?", Lang::Ru, "какие у вас тарифы?"),
    ];
    for (text, lang, expected) in table {
        assert_eq!(
            closer_dialog::knowledge_query(&config, text, lang, &[]),
            expected,
            "{text}"
        );
    }
}

#[test]
fn a_note_typed_by_a_person_makes_a_lead_only_with_a_way_to_reach_them() {
    let lead =
        closer_dialog::lead_from_note("Иван Петров, +7 903 123-45-67, хочет демо для трёх салонов")
            .expect("a phone makes a lead");
    assert_eq!(
        lead.contact
            .phone
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("+79031234567")
    );
    assert_eq!(lead.contact.name.as_deref(), Some("Иван Петров"));
    assert!(lead.summary.contains("хочет демо"), "{}", lead.summary);
    assert!(!lead.summary.contains("903"), "{}", lead.summary);

    let lead = closer_dialog::lead_from_note("Anna from Acme anna@acme.com wants pricing")
        .expect("an e-mail makes a lead");
    assert_eq!(
        lead.contact
            .email
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("anna@acme.com")
    );

    assert_eq!(
        closer_dialog::lead_from_note("call that guy from yesterday"),
        Err(closer_dialog::ManualLeadError::NoContact)
    );
}

#[test]
fn a_russian_prospect_answering_with_just_an_email_is_still_answered_in_russian() {
    let config = config();
    let steps = run(
        &config,
        &[
            text("Здравствуйте, хочу подключить сеть салонов", None),
            text("anna.smirnova@example.com", None),
        ],
    );
    let last = steps.last().expect("two steps");
    assert_eq!(last.state.lang(), Lang::Ru);
    assert!(
        count_effects(&steps, |effect| matches!(effect, Effect::CreateLead(_))) == 1,
        "{steps:#?}"
    );
    assert!(
        last.replies
            .iter()
            .all(|reply| reply.text.chars().any(|ch| ('а'..='я').contains(&ch))),
        "in Russian: {:#?}",
        last.replies
    );
}

#[test]
fn an_objection_falls_back_to_the_objection_guide_searched_alone() {
    let config = config();
    // With the search words, then the prospect's words, then the kind's search words alone.
    assert_eq!(
        closer_dialog::knowledge_queries(
            &config,
            "honestly its too expensive for us",
            Lang::En,
            &[]
        ),
        vec![
            "honestly its too expensive for us. too expensive, price".to_owned(),
            "honestly its too expensive for us".to_owned(),
            "too expensive, price".to_owned(),
        ]
    );
    // No objection: the message as it is.
    assert_eq!(
        closer_dialog::knowledge_queries(&config, "какие у вас тарифы?", Lang::Ru, &[]),
        vec!["какие у вас тарифы?".to_owned()]
    );
}

#[test]
fn broader_objection_phrasings_are_recognised() {
    use ObjectionKind::*;
    let config = config();
    let table: &[(&str, Lang, &[ObjectionKind])] = &[
        ("we are on Canvas at the moment", Lang::En, &[Competitor]),
        ("We use Teachable for our courses", Lang::En, &[Competitor]),
        ("we're moving from another vendor", Lang::En, &[Competitor]),
        ("мы сидим на Тильде", Lang::Ru, &[Competitor]),
        (
            "пользуемся битриксом, всё устраивает",
            Lang::Ru,
            &[Competitor],
        ),
        ("мы на getcourse", Lang::Ru, &[Competitor]),
        ("думаем перейти с текущей системы", Lang::Ru, &[Competitor]),
        ("I will pass this on to my boss", Lang::En, &[Authority]),
        (
            "researching options for my director",
            Lang::En,
            &[Authority],
        ),
        ("our CEO needs to approve it", Lang::En, &[Authority]),
        ("покажу руководству и вернусь", Lang::Ru, &[Authority]),
        ("подбираю для директора", Lang::Ru, &[Authority]),
        ("решаю не я", Lang::Ru, &[Authority]),
        ("напишу вам позже", Lang::Ru, &[Timing]),
        ("not a priority right now", Lang::En, &[Timing]),
        // Not objections.
        ("can we use it on mobile?", Lang::En, &[]),
        ("how do we use the api", Lang::En, &[]),
        ("мы на связи", Lang::Ru, &[]),
        ("работаем в Казани", Lang::Ru, &[]),
    ];
    for (message, lang, expected) in table {
        assert_eq!(
            detect_objections(&config, message, *lang),
            expected.to_vec(),
            "{message}"
        );
    }
}

#[test]
fn closing_phrases_are_small_talk() {
    let config = config();
    for message in [
        "thanks, thats all for now",
        "thank you, that's it",
        "no more questions, bye",
        "ok I'm all set, thanks",
        "спасибо, больше вопросов нет",
        "спасибо, это всё",
        "вопросов больше нет, спасибо",
        "на этом всё, до свидания",
        "пока",
    ] {
        let result = step(
            &config,
            DialogState::default(),
            &text(message, Some("Тариф Бизнес стоит 12 900 ₽ в месяц.")),
        );
        let kinds: Vec<ReplyKind> = result.replies.iter().map(|reply| reply.kind).collect();
        assert_eq!(kinds, vec![ReplyKind::Smalltalk], "{message}");
        assert!(result.replies[0].citations.is_empty(), "{message}");
    }
    // A thanks followed by a real request is not a goodbye.
    let result = step(
        &config,
        DialogState::default(),
        &text("спасибо, а что по интеграциям нет ничего?", None),
    );
    assert_eq!(result.replies[0].kind, ReplyKind::Declined);
}

#[test]
fn a_statement_that_asks_nothing_is_acknowledged_not_declined() {
    let config = config();
    for message in [
        "у нас небольшое агентство, ведём всё в таблицах",
        "we run a small design studio with a shared inbox",
    ] {
        let result = step(&config, DialogState::default(), &text(message, None));
        let kinds: Vec<ReplyKind> = result.replies.iter().map(|reply| reply.kind).collect();
        assert!(
            !kinds.contains(&ReplyKind::Declined),
            "{message}: {kinds:?}"
        );
        assert_eq!(kinds.first(), Some(&ReplyKind::Prompt), "{message}");
        // Kept as the need, so it is not asked again.
        assert!(result.state.qualification.contains_key("need"), "{message}");
    }
    // A question the knowledge base cannot answer is still declined.
    for message in ["у вас есть сертификат iso?", "дайте личный номер директора"]
    {
        let result = step(&config, DialogState::default(), &text(message, None));
        assert_eq!(result.replies[0].kind, ReplyKind::Declined, "{message}");
    }
}

#[test]
fn the_scale_question_fits_any_business() {
    let config = config();
    let volume = config
        .qualification
        .iter()
        .find(|question| question.key == "volume")
        .expect("the playbook asks for the scale");
    for lang in [Lang::Ru, Lang::En] {
        let question = config.render(&volume.question, lang, None).to_lowercase();
        for word in ["склад", "точ", "warehouse", "location"] {
            assert!(!question.contains(word), "{question}");
        }
    }
    // The answer is recognised in any business's units.
    let result = step(
        &config,
        DialogState::default(),
        &text("у нас около 600 учеников", None),
    );
    assert!(result.state.qualification.contains_key("volume"));
}

#[test]
fn a_qualification_question_waits_for_a_later_turn_after_a_long_answer() {
    let config = config();
    let short = "Тариф Бизнес стоит 12 900 ₽ в месяц.";
    let long = "Тариф Бизнес стоит 12 900 ₽ в месяц: до трёх складов, интеграции с маркетплейсами и 1С, \
                API и вебхуки, поддержка в чате с ответом за два часа в рабочее время. При оплате за год \
                скидка 15 %, а внедрение «Быстрый старт» занимает три рабочих дня.";
    let after_short = step(
        &config,
        DialogState::default(),
        &text("сколько стоит бизнес", Some(short)),
    );
    let kinds: Vec<ReplyKind> = after_short.replies.iter().map(|reply| reply.kind).collect();
    assert_eq!(kinds, [ReplyKind::Answer, ReplyKind::Prompt]);
    let after_long = step(
        &config,
        DialogState::default(),
        &text("сколько стоит бизнес", Some(long)),
    );
    let kinds: Vec<ReplyKind> = after_long.replies.iter().map(|reply| reply.kind).collect();
    assert_eq!(kinds, [ReplyKind::Answer], "{:?}", after_long.replies);
    // Not asked, so asked on a later turn.
    assert!(after_long.state.asked_qualification.is_empty());
    let next = step(
        &config,
        after_long.state.clone(),
        &text(
            "а сколько стоит старт",
            Some("Тариф Старт стоит 4 900 ₽ в месяц."),
        ),
    );
    assert!(
        next.replies
            .iter()
            .any(|reply| reply.kind == ReplyKind::Prompt),
        "{:?}",
        next.replies
    );
}

/// The message as the engine hands it over when its meaning was recognised.
fn meant(message: &str, intent: Intent) -> Input {
    Input {
        meaning: vec![intent],
        ..text(message, Some("Ответ из базы знаний."))
    }
}

#[test]
fn every_intent_of_a_message_is_acted_on_the_whole_and_each_clause() {
    let config = config();
    // "The price is fine, but my partner decides; have someone call me": an objection in one
    // clause and a request for a person in another, neither in the patterns' words.
    let input = Input {
        meaning: vec![
            Intent::Objection(ObjectionKind::Authority),
            Intent::Handoff,
        ],
        ..text(
            "цена устраивает, только последнее слово за партнёром; пусть со мной свяжется кто-то из ваших",
            Some("Ответ из базы знаний."),
        )
    };
    let both = step(&config, DialogState::default(), &input);
    assert_eq!(both.state.objections, vec![ObjectionKind::Authority]);
    assert!(
        both.effects
            .iter()
            .any(|effect| matches!(effect, Effect::HandOff { .. })),
        "{:?}",
        both.effects
    );
    // Each kind once, in the kinds' own order, whatever order the clauses gave them.
    assert_eq!(
        closer_dialog::objections(
            &config,
            "просто текст",
            Lang::Ru,
            &[
                Intent::Objection(ObjectionKind::Trust),
                Intent::Objection(ObjectionKind::Price),
                Intent::Objection(ObjectionKind::Trust),
            ],
        ),
        vec![ObjectionKind::Price, ObjectionKind::Trust]
    );
}

#[test]
fn what_is_recognised_by_meaning_is_acted_on_like_what_the_patterns_match() {
    let config = config();
    // Words no pattern knows: the meaning decides.
    let person = step(
        &config,
        DialogState::default(),
        &meant("пусть этим займётся кто-то из ваших", Intent::Handoff),
    );
    assert!(person
        .effects
        .iter()
        .any(|effect| matches!(effect, Effect::HandOff { .. })));

    let objection = step(
        &config,
        DialogState::default(),
        &meant(
            "последнее слово за партнёром",
            Intent::Objection(ObjectionKind::Authority),
        ),
    );
    assert_eq!(objection.state.objections, vec![ObjectionKind::Authority]);
    assert_eq!(objection.replies[0].kind, ReplyKind::Objection);
    assert_eq!(
        closer_dialog::knowledge_queries(
            &config,
            "последнее слово за партнёром",
            Lang::Ru,
            &[Intent::Objection(ObjectionKind::Authority)],
        )[0],
        format!(
            "последнее слово за партнёром. {}",
            config
                .objections
                .iter()
                .find(|rule| rule.kind == ObjectionKind::Authority)
                .and_then(|rule| rule.search.as_ref())
                .expect("search words")
                .ru
        ),
        "the guide is searched with the playbook's words for the recognised kind"
    );

    let refusal = step(
        &config,
        DialogState::default(),
        &meant("номер оставлять не стану", Intent::ContactRefusal),
    );
    assert!(refusal.state.contact_refused);

    // A question nearest to `other` is a question, whatever words it shares with a pattern.
    let question = step(
        &config,
        DialogState::default(),
        &text(
            "сколько стоит базовый тариф?",
            Some("Базовый тариф: 990 ₽."),
        ),
    );
    assert_eq!(question.replies[0].kind, ReplyKind::Answer);
    assert!(question.state.objections.is_empty());
}

#[test]
fn the_playbook_examples_name_known_intents_and_are_never_empty() {
    let config = config();
    for intent in [
        "handoff",
        "buying_intent",
        "contact_refusal",
        "price",
        "authority",
        "other",
    ] {
        let intent = Intent::parse(intent).expect("a known intent");
        for lang in [Lang::Ru, Lang::En] {
            assert!(
                config
                    .examples
                    .iter()
                    .any(|example| example.intent == intent && example.lang == lang),
                "the shipped playbook has {lang:?} examples of {}",
                intent.as_str()
            );
        }
    }
    let with =
        |examples: &str| PLAYBOOK.replace("[examples]\n", &format!("[examples]\n{examples}\n"));
    let unknown = DialogConfig::from_toml_str(&with("prices = { ru = [\"дорого\"] }"));
    assert!(
        matches!(&unknown, Err(ConfigError::UnknownIntent { key, .. }) if key == "prices"),
        "{unknown:?}"
    );
    let empty = DialogConfig::from_toml_str(&PLAYBOOK.replacen("  \"дорого\",\n", "  \" \",\n", 1));
    assert!(
        matches!(&empty, Err(ConfigError::EmptyExample(key)) if key == "price"),
        "{empty:?}"
    );
    let bad =
        DialogConfig::from_toml_str(&PLAYBOOK.replace("min_margin = 0.03", "min_margin = 2.0"));
    assert!(
        matches!(bad, Err(ConfigError::BadThreshold("min_margin"))),
        "{bad:?}"
    );
}

#[test]
fn a_question_only_its_meaning_takes_for_an_objection_is_declined_when_the_base_has_nothing() {
    let config = config();
    let question = Input {
        meaning: vec![Intent::Objection(ObjectionKind::Trust)],
        ..text("а страховка ответственности у вас есть?", None)
    };
    let turn = step(&config, DialogState::default(), &question);
    assert_eq!(turn.replies[0].kind, ReplyKind::Declined);
    assert_eq!(turn.state.objections, vec![ObjectionKind::Trust]);
    // With an answer in the knowledge base, it is answered as the objection it may be.
    let answered = step(
        &config,
        DialogState::default(),
        &Input {
            knowledge: Some(knowledge("Ответственность застрахована на 1 млн ₽.")),
            ..question
        },
    );
    assert_eq!(answered.replies[0].kind, ReplyKind::Objection);
}
