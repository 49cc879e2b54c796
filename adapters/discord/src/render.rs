//! Replies to Discord messages: pure, no I/O.
//!
//! Everything the assistant wrote is escaped for Discord's markdown (so `*`, `_`, `~`, `` ` ``,
//! `|`, `>` and a leading `#` or `-` show as typed), and no message may ping anyone but the
//! prospect it answers (`allowed_mentions`). A reply longer than Discord's 2,000 characters
//! is split on paragraph boundaries, then lines, sentences, words. Citations close the last
//! part as one line of Discord's small text (`-# 📄 Source: …`). Quick replies become buttons
//! (five to a row, at most five rows) on the last part, their payload as the `custom_id`; a
//! request for contact details becomes a button that opens the contact form.

use closer_model::{Lang, Reply};
use serde_json::{json, Value};

use crate::inbound::CONTACT_BUTTON_ID;

/// Discord's limit on a message's content, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Discord's limit on a component's `custom_id`, in characters.
pub const MAX_CUSTOM_ID_CHARS: usize = 100;
/// Discord's limit on a button's label, in characters.
pub const MAX_LABEL_CHARS: usize = 80;
/// Buttons in one action row, and action rows in one message.
const BUTTONS_PER_ROW: usize = 5;
const MAX_ROWS: usize = 5;

/// One Discord message to send: the body of `POST /channels/{id}/messages` or of a
/// follow-up (`POST /webhooks/{application}/{token}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub body: Value,
}

impl Outgoing {
    /// The message's text, as sent.
    pub fn content(&self) -> &str {
        self.body["content"].as_str().unwrap_or("")
    }
}

/// Renders one reply as one or more messages. `mention`: the person to mention at the start
/// (a conversation in a shared server channel), the only one the message may ping.
pub fn render(reply: &Reply, mention: Option<u64>) -> Vec<Outgoing> {
    render_with_limit(reply, mention, MAX_MESSAGE_CHARS)
}

fn render_with_limit(reply: &Reply, mention: Option<u64>, limit: usize) -> Vec<Outgoing> {
    let lang = Lang::detect(&reply.text).unwrap_or(Lang::Ru);
    let prefix = mention
        .map(|user| format!("<@{user}> "))
        .unwrap_or_default();
    let mut parts: Vec<String> = split(&escape(reply.text.trim()), limit - char_len(&prefix));
    match parts.first_mut() {
        Some(first) => first.insert_str(0, &prefix),
        // Discord refuses an empty message; an empty reply is a bug upstream, said plainly
        // (and the mention still comes first, before any sources).
        None => parts.push(format!("{prefix}…")),
    }
    if let Some(sources) = citation_line(reply, lang) {
        let fits = parts
            .last()
            .is_some_and(|last| char_len(last) + 1 + char_len(&sources) <= limit);
        match parts.last_mut() {
            Some(last) if fits => {
                last.push('\n');
                last.push_str(&sources);
            }
            _ => parts.extend(split(&sources, limit)),
        }
    }
    let components = components_for(reply, lang);
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(index, content)| {
            let mut body = json!({
                "content": content,
                "allowed_mentions": {
                    "parse": [],
                    "users": mention.map(|user| vec![user.to_string()]).unwrap_or_default(),
                },
            });
            if index == last && !components.is_empty() {
                body["components"] = Value::Array(components.clone());
            }
            Outgoing { body }
        })
        .collect()
}

/// Escapes Discord's markdown so the text shows as written.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        // Headings (`#`), block quotes (`>`), lists (`-`, `*`, `1.`) and subtext (`-#`) are
        // markdown only at the start of a line.
        let trimmed = line.trim_start_matches([' ', '\t']);
        let indent = &line[..line.len() - trimmed.len()];
        escaped.push_str(indent);
        let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
        let numbered = digits > 0 && trimmed[digits..].starts_with(". ");
        if trimmed.starts_with('#') || trimmed.starts_with("- ") || trimmed.starts_with('+') {
            escaped.push('\\');
        }
        for (index, c) in trimmed.char_indices() {
            if numbered && index == digits {
                escaped.push('\\');
            }
            if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '[' | ']') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
    }
    escaped
}

fn citation_line(reply: &Reply, lang: Lang) -> Option<String> {
    let titles = reply.cited_titles();
    if titles.is_empty() {
        return None;
    }
    let label = Reply::sources_label(lang, titles.len());
    let titles: Vec<String> = titles.iter().map(|title| escape(title)).collect();
    Some(format!("-# 📄 {label}: {}", titles.join(" · ")))
}

fn components_for(reply: &Reply, lang: Lang) -> Vec<Value> {
    let mut buttons: Vec<Value> = reply
        .quick_replies
        .iter()
        .filter(|button| {
            let fits = !button.payload.is_empty()
                && char_len(&button.payload) <= MAX_CUSTOM_ID_CHARS
                && button.payload != CONTACT_BUTTON_ID;
            if !fits {
                tracing::warn!(
                    payload = %button.payload,
                    "a quick reply's payload cannot be a Discord custom_id; the button is left out"
                );
            }
            fits
        })
        .map(|button| {
            json!({
                "type": 2,
                "style": 2,
                "label": truncate(&button.label, MAX_LABEL_CHARS),
                "custom_id": button.payload,
            })
        })
        .collect();
    if reply.request_contact {
        let label = match lang {
            Lang::Ru => "📇 Оставить контакты",
            _ => "📇 Leave my contact details",
        };
        buttons.insert(
            0,
            json!({"type": 2, "style": 1, "label": label, "custom_id": CONTACT_BUTTON_ID}),
        );
    }
    buttons.truncate(BUTTONS_PER_ROW * MAX_ROWS);
    // Short labels (a 1-to-5 rating) share a row; longer ones get a row each while they fit.
    let short = buttons
        .iter()
        .all(|button| button["label"].as_str().map_or(0, char_len) <= 3);
    let per_row = if short || buttons.len() > MAX_ROWS {
        BUTTONS_PER_ROW
    } else {
        1
    };
    buttons
        .chunks(per_row)
        .map(|row| json!({"type": 1, "components": row}))
        .collect()
}

fn truncate(text: &str, limit: usize) -> String {
    if char_len(text) <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

/// Discord counts a message's length in Unicode code points.
fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// Splits `text` into chunks of at most `limit` characters, preferring paragraph breaks, then
/// line breaks, then sentence ends, then spaces; a single unbroken run is cut anywhere but
/// between an escaping backslash and the character it escapes.
fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(2);
    let mut chunks = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if char_len(rest) <= limit {
            chunks.push(rest.to_owned());
            break;
        }
        let end = rest
            .char_indices()
            .nth(limit)
            .map_or(rest.len(), |(index, _)| index);
        let window = &rest[..end];
        let cut = ["\n\n", "\n", ". ", "! ", "? ", " "]
            .iter()
            .find_map(|separator| {
                window
                    .rfind(separator)
                    .filter(|&at| at > 0)
                    .map(|at| at + separator.len())
            })
            .unwrap_or_else(|| {
                let backslashes = window.bytes().rev().take_while(|&b| b == b'\\').count();
                if backslashes % 2 == 1 {
                    end - 1
                } else {
                    end
                }
            });
        let (head, tail) = rest.split_at(cut);
        chunks.push(head.trim_end().to_owned());
        rest = tail.trim_start();
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use closer_model::{Citation, QuickReply, ReplyKind};
    use expect_test::expect;

    fn reply(text: &str) -> Reply {
        Reply::new(ReplyKind::Answer, text)
    }

    fn show(parts: &[Outgoing]) -> String {
        parts
            .iter()
            .map(|part| serde_json::to_string_pretty(&part.body).expect("serializes"))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    #[test]
    fn markdown_is_escaped_and_citations_are_one_small_line() {
        let mut answer = reply("Тариф *Старт* — 990 ₽/мес, без `комиссии` и __скрытых__ платежей.\n# не заголовок\n- не список\n1. не номер");
        answer.citations = vec![
            Citation {
                title: "Тарифы".to_owned(),
                source: "tarify.md".to_owned(),
            },
            Citation {
                title: "Тарифы".to_owned(),
                source: "tarify.csv".to_owned(),
            },
            Citation {
                title: "FAQ_2026".to_owned(),
                source: "faq.md".to_owned(),
            },
        ];
        expect![[r#"
            {
              "allowed_mentions": {
                "parse": [],
                "users": []
              },
              "content": "Тариф \\*Старт\\* — 990 ₽/мес, без \\`комиссии\\` и \\_\\_скрытых\\_\\_ платежей.\n\\# не заголовок\n\\- не список\n1\\. не номер\n-# 📄 Источники: Тарифы · FAQ\\_2026"
            }"#]]
        .assert_eq(&show(&render(&answer, None)));
    }

    #[test]
    fn a_reply_in_a_server_channel_mentions_only_its_prospect() {
        expect![[r#"
            {
              "allowed_mentions": {
                "parse": [],
                "users": [
                  "4001"
                ]
              },
              "content": "<@4001> Hello @everyone!"
            }"#]]
        .assert_eq(&show(&render(&reply("Hello @everyone!"), Some(4001))));
    }

    #[test]
    fn the_rating_is_one_row_of_five_buttons_and_a_contact_request_opens_the_form() {
        let mut rating = Reply::new(ReplyKind::Prompt, "Rate me");
        rating.quick_replies = (1..=5)
            .map(|value| QuickReply {
                label: value.to_string(),
                payload: format!("rate:{value}"),
            })
            .collect();
        let body = &render(&rating, None)[0].body;
        expect![[r#"[{"components":[{"custom_id":"rate:1","label":"1","style":2,"type":2},{"custom_id":"rate:2","label":"2","style":2,"type":2},{"custom_id":"rate:3","label":"3","style":2,"type":2},{"custom_id":"rate:4","label":"4","style":2,"type":2},{"custom_id":"rate:5","label":"5","style":2,"type":2}],"type":1}]"#]]
        .assert_eq(&body["components"].to_string());

        let mut ask = Reply::new(ReplyKind::Prompt, "How can our manager reach you?");
        ask.request_contact = true;
        ask.quick_replies = vec![QuickReply {
            label: "Talk to a person".to_owned(),
            payload: "handoff".to_owned(),
        }];
        let body = &render(&ask, None)[0].body;
        expect![[r#"[{"components":[{"custom_id":"closer:contact","label":"📇 Leave my contact details","style":1,"type":2}],"type":1},{"components":[{"custom_id":"handoff","label":"Talk to a person","style":2,"type":2}],"type":1}]"#]]
        .assert_eq(&body["components"].to_string());
    }

    #[test]
    fn long_text_splits_on_paragraphs_within_the_limit_with_buttons_on_the_last_part() {
        let paragraph = "Word ".repeat(30);
        let text = [paragraph.trim(); 5].join("\n\n");
        let mut long = reply(&text);
        long.quick_replies = vec![QuickReply {
            label: "More".to_owned(),
            payload: "more".to_owned(),
        }];
        let parts = render_with_limit(&long, Some(4001), 400);
        assert!(parts.len() > 1);
        for (index, part) in parts.iter().enumerate() {
            assert!(char_len(part.content()) <= 400);
            assert!(part.content().trim_end().ends_with("Word"));
            assert_eq!(
                part.body.get("components").is_some(),
                index == parts.len() - 1
            );
        }
        assert!(parts[0].content().starts_with("<@4001> Word"));
        assert!(parts[1].content().starts_with("Word"));
    }

    #[test]
    fn an_unbroken_run_is_cut_within_the_limit_and_never_splits_an_escape() {
        let parts = render(&reply(&"я".repeat(4500)), None);
        assert_eq!(parts.len(), 3);
        assert!(parts
            .iter()
            .all(|part| char_len(part.content()) <= MAX_MESSAGE_CHARS));
        // 1,999 letters then stars: the 2,000th character is an escaping backslash, which
        // must move to the next part together with its star.
        let parts = render(
            &reply(&format!("{}{}", "a".repeat(1999), "*".repeat(10))),
            None,
        );
        assert_eq!(char_len(parts[0].content()), 1999);
        assert!(parts[1].content().starts_with("\\*"));
    }

    mod properties {
        use closer_testing::{cases, nasty_text, nasty_text_with};
        use proptest::prelude::*;

        use super::*;

        const MARKDOWN_PIECES: &[&str] = &[
            "\n\n", "\n", ". ", " ", "\\", "\\\\", "*", "# ", "- ", "1. ", "> ", "`", "-#",
        ];

        fn without_whitespace(text: &str) -> String {
            text.chars().filter(|c| !c.is_whitespace()).collect()
        }

        /// Whether `text` ends in the middle of an escape: an odd run of backslashes.
        fn ends_inside_an_escape(text: &str) -> bool {
            text.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
        }

        proptest! {
            #![proptest_config(cases(192))]

            /// Escaping keeps every character and only adds backslashes.
            #[test]
            fn escaping_only_adds_backslashes(text in nasty_text_with(MARKDOWN_PIECES)) {
                let escaped = escape(&text);
                let mut kept = escaped.chars().peekable();
                let mut unescaped = String::new();
                while let Some(c) = kept.next() {
                    if c == '\\' {
                        if let Some(next) = kept.next() {
                            unescaped.push(next);
                            continue;
                        }
                    }
                    unescaped.push(c);
                }
                // Escapes are inserted only before a character, never at the end.
                prop_assert!(!ends_inside_an_escape(&escaped), "{escaped:?}");
                prop_assert_eq!(unescaped.replace('\\', ""), text.replace('\\', ""));
            }

            /// Every part is within the limit, none ends inside an escape, and the parts
            /// rejoin to the escaped text but for the whitespace at a cut.
            #[test]
            fn split_parts_fit_keep_escapes_whole_and_rejoin(
                text in nasty_text_with(MARKDOWN_PIECES),
                limit in 2usize..300,
            ) {
                let escaped = escape(&text);
                let parts = split(&escaped, limit);
                for part in &parts {
                    prop_assert!(char_len(part) <= limit, "{} chars: {part:?}", char_len(part));
                    prop_assert!(!part.is_empty() && part.trim() == part, "{part:?}");
                    prop_assert!(!ends_inside_an_escape(part), "{part:?}");
                }
                prop_assert_eq!(without_whitespace(&parts.concat()), without_whitespace(&escaped));
            }

            /// A whole reply renders to messages Discord takes: at most 2,000 characters,
            /// never empty, the mention first, the buttons on the last part only and within
            /// Discord's limits.
            #[test]
            fn every_rendered_message_is_within_discord_limits(
                text in nasty_text_with(MARKDOWN_PIECES),
                titles in proptest::collection::vec(nasty_text(), 0..3),
                buttons in proptest::collection::vec((nasty_text(), nasty_text()), 0..30),
                mention in proptest::option::of(any::<u64>()),
                long in any::<bool>(),
            ) {
                let text = if long { text.repeat(2000 / text.len().max(1) + 2) } else { text };
                let mut reply = reply(&text);
                reply.citations = titles
                    .into_iter()
                    .map(|title| Citation { title, source: "source.md".to_owned() })
                    .collect();
                reply.quick_replies = buttons
                    .into_iter()
                    .map(|(label, payload)| QuickReply { label, payload })
                    .collect();
                let parts = render(&reply, mention);
                prop_assert!(!parts.is_empty());
                if let Some(user) = mention {
                    // Followed by a space and the text, or alone when the text is empty.
                    let expected = format!("<@{user}>");
                    prop_assert!(parts[0].content().starts_with(&expected), "{:?}", parts[0].content());
                }
                for (index, part) in parts.iter().enumerate() {
                    prop_assert!(char_len(part.content()) <= MAX_MESSAGE_CHARS);
                    prop_assert!(!part.content().trim().is_empty());
                    let rows = part.body.get("components").and_then(Value::as_array);
                    prop_assert!(rows.is_none() || index + 1 == parts.len());
                    let rows = rows.cloned().unwrap_or_default();
                    prop_assert!(rows.len() <= MAX_ROWS);
                    for row in &rows {
                        let row = row["components"].as_array().cloned().unwrap_or_default();
                        prop_assert!(!row.is_empty() && row.len() <= BUTTONS_PER_ROW);
                        for button in &row {
                            let label = button["label"].as_str().unwrap_or_default();
                            let custom_id = button["custom_id"].as_str().unwrap_or_default();
                            prop_assert!(char_len(label) <= MAX_LABEL_CHARS);
                            prop_assert!(!custom_id.is_empty() && char_len(custom_id) <= MAX_CUSTOM_ID_CHARS);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn odd_buttons_are_left_out_and_long_labels_shortened() {
        let mut odd = reply("Choose");
        odd.quick_replies = vec![
            QuickReply {
                label: "x".repeat(100),
                payload: "ok".to_owned(),
            },
            QuickReply {
                label: "empty".to_owned(),
                payload: String::new(),
            },
            QuickReply {
                label: "too long".to_owned(),
                payload: "p".repeat(101),
            },
        ];
        let body = &render(&odd, None)[0].body;
        let rows = body["components"].as_array().expect("rows");
        assert_eq!(rows.len(), 1);
        let label = rows[0]["components"][0]["label"].as_str().expect("a label");
        assert_eq!(char_len(label), MAX_LABEL_CHARS);
    }
}
