//! Replies to Telegram messages: pure, no I/O.
//!
//! Text is sent with `parse_mode = HTML`, everything the assistant wrote escaped (so a price
//! like `<1000 ₽` or a company `A&B` cannot break the message), citations in italics. A reply
//! longer than Telegram's 4,096 characters is split on paragraph boundaries (then lines,
//! sentences, words). Quick replies become an inline keyboard on the last part, their payload
//! as callback data (at most 64 bytes); a request for contact details becomes a one-time
//! "share my phone" keyboard.

use closer_model::{Lang, Reply, ReplyKind};
use teloxide::types::{
    ButtonRequest, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, KeyboardMarkup,
    KeyboardRemove, ReplyMarkup,
};
use teloxide::utils::html;

/// Telegram's limit on a message's text, in characters after entity parsing.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Telegram's limit on a button's callback data, in bytes.
pub const MAX_CALLBACK_BYTES: usize = 64;

/// One Telegram message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// HTML text, escaped.
    pub html: String,
    /// The same text without markup, for a retry when Telegram rejects the HTML.
    pub plain: String,
    pub markup: Option<ReplyMarkup>,
}

/// Renders one reply as one or more messages.
pub fn render(reply: &Reply) -> Vec<Outgoing> {
    render_with_limit(reply, MAX_MESSAGE_CHARS)
}

fn render_with_limit(reply: &Reply, limit: usize) -> Vec<Outgoing> {
    let lang = Lang::detect(&reply.text).unwrap_or(Lang::Ru);
    let sources = citation_line(reply, lang);
    let mut parts: Vec<(String, String)> = split(reply.text.trim(), limit)
        .into_iter()
        .map(|chunk| (html::escape(&chunk), chunk))
        .collect();
    if let Some(sources) = sources {
        let fits = parts
            .last()
            .is_some_and(|(_, plain)| char_len(plain) + 2 + char_len(&sources) <= limit);
        if fits {
            if let Some((html_text, plain)) = parts.last_mut() {
                html_text.push_str(&format!("\n\n<i>{}</i>", html::escape(&sources)));
                plain.push_str(&format!("\n\n{sources}"));
            }
        } else {
            for chunk in split(&sources, limit) {
                parts.push((format!("<i>{}</i>", html::escape(&chunk)), chunk));
            }
        }
    }
    if parts.is_empty() {
        // Telegram refuses an empty message; an empty reply is a bug upstream, said plainly.
        parts.push(("…".to_owned(), "…".to_owned()));
    }
    let markup = markup_for(reply, lang);
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(index, (html_text, plain))| Outgoing {
            html: html_text,
            plain,
            markup: if index == last { markup.clone() } else { None },
        })
        .collect()
}

fn citation_line(reply: &Reply, lang: Lang) -> Option<String> {
    let titles = reply.cited_titles();
    if titles.is_empty() {
        return None;
    }
    let label = Reply::sources_label(lang, titles.len());
    Some(format!("📄 {label}: {}", titles.join("; ")))
}

fn markup_for(reply: &Reply, lang: Lang) -> Option<ReplyMarkup> {
    if reply.request_contact {
        let label = match lang {
            Lang::Ru => "📱 Поделиться номером",
            _ => "📱 Share my phone number",
        };
        return Some(ReplyMarkup::Keyboard(
            KeyboardMarkup::new([[KeyboardButton::new(label).request(ButtonRequest::Contact)]])
                .one_time_keyboard()
                .resize_keyboard(),
        ));
    }
    let buttons: Vec<InlineKeyboardButton> = reply
        .quick_replies
        .iter()
        .filter(|button| {
            let fits = !button.payload.is_empty() && button.payload.len() <= MAX_CALLBACK_BYTES;
            if !fits {
                tracing::warn!(
                    payload = %button.payload,
                    "a quick reply's payload does not fit Telegram's 64 bytes; the button is left out"
                );
            }
            fits
        })
        .map(|button| InlineKeyboardButton::callback(button.label.clone(), button.payload.clone()))
        .collect();
    if buttons.is_empty() {
        // A confirmation closes what a contact keyboard opened.
        return matches!(reply.kind, ReplyKind::Confirmation | ReplyKind::Handoff)
            .then(|| ReplyMarkup::KeyboardRemove(KeyboardRemove::new()));
    }
    // Short labels (a 1-to-5 rating) share a row; longer ones get a row each.
    let short = buttons.iter().all(|button| char_len(&button.text) <= 3);
    let rows: Vec<Vec<InlineKeyboardButton>> = if short {
        vec![buttons]
    } else {
        buttons.into_iter().map(|button| vec![button]).collect()
    };
    Some(ReplyMarkup::InlineKeyboard(InlineKeyboardMarkup::new(rows)))
}

/// Telegram counts a message's length in UTF-16 code units.
fn char_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Splits `text` into chunks of at most `limit` UTF-16 units, preferring paragraph breaks,
/// then line breaks, then sentence ends, then spaces; a single unbroken run is cut anywhere.
fn split(text: &str, limit: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if char_len(rest) <= limit {
            chunks.push(rest.to_owned());
            break;
        }
        // The longest prefix within the limit, on a char boundary.
        let mut units = 0;
        let mut end = 0;
        for (index, c) in rest.char_indices() {
            units += c.len_utf16();
            if units > limit {
                break;
            }
            end = index + c.len_utf8();
        }
        if end == 0 {
            // A limit below one character's units (an emoji is two): the character goes
            // alone rather than not at all, which looped forever.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let window = &rest[..end];
        let cut = ["\n\n", "\n", ". ", "! ", "? ", " "]
            .iter()
            .find_map(|separator| {
                window
                    .rfind(separator)
                    .filter(|&at| at > 0)
                    .map(|at| at + separator.len())
            })
            .unwrap_or(end);
        let (head, tail) = rest.split_at(cut);
        chunks.push(head.trim_end().to_owned());
        rest = tail.trim_start();
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use closer_model::{Citation, QuickReply};

    fn reply(text: &str) -> Reply {
        Reply::new(ReplyKind::Answer, text)
    }

    #[test]
    fn text_is_escaped_for_html_and_citations_are_named() {
        let mut answer = reply("Тариф «Старт» <1000 ₽ & без комиссии.");
        answer.citations = vec![
            Citation {
                title: "Тарифы".to_owned(),
                source: "tarify.md".to_owned(),
            },
            Citation {
                title: "Тарифы".to_owned(),
                source: "tarify.csv".to_owned(),
            },
        ];
        let parts = render(&answer);
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].html,
            "Тариф «Старт» &lt;1000 ₽ &amp; без комиссии.\n\n<i>📄 Источник: Тарифы</i>"
        );
        assert_eq!(parts[0].markup, None);
    }

    #[test]
    fn long_text_splits_on_paragraphs_within_the_limit() {
        let paragraph = "Word ".repeat(30);
        let text = [paragraph.trim(); 5].join("\n\n");
        let parts = render_with_limit(&reply(&text), 400);
        assert!(parts.len() > 1);
        for part in &parts {
            assert!(char_len(&part.plain) <= 400, "{}", part.plain.len());
            assert!(part.plain.starts_with("Word") && part.plain.ends_with("Word"));
        }
        let joined: Vec<String> = parts.iter().map(|part| part.plain.clone()).collect();
        assert_eq!(joined.join("\n\n"), text);
    }

    #[test]
    fn an_unbroken_run_is_cut_within_the_limit_on_char_boundaries() {
        let text = "я".repeat(9000);
        let parts = render(&reply(&text));
        assert_eq!(parts.len(), 3);
        assert!(parts
            .iter()
            .all(|part| char_len(&part.plain) <= MAX_MESSAGE_CHARS));
        // Emoji are two UTF-16 units each: the count is Telegram's, not Rust's chars.
        let emoji = "😀".repeat(3000);
        let parts = render(&reply(&emoji));
        assert!(parts
            .iter()
            .all(|part| char_len(&part.plain) <= MAX_MESSAGE_CHARS));
        assert_eq!(parts.len(), 2);
    }

    #[test]
    fn a_limit_below_a_character_still_makes_progress() {
        assert_eq!(split("😀😀 a", 1), ["😀", "😀", "a"]);
    }

    mod properties {
        use closer_testing::{cases, nasty_text, nasty_text_with};
        use proptest::prelude::*;

        use super::*;

        const SEPARATORS: &[&str] = &[
            "\n\n",
            "\n",
            ". ",
            "! ",
            "? ",
            " ",
            "  ",
            "👨\u{200d}👩\u{200d}👧",
        ];

        fn without_whitespace(text: &str) -> String {
            text.chars().filter(|c| !c.is_whitespace()).collect()
        }

        proptest! {
            #![proptest_config(cases(192))]

            /// Every part is within the limit in UTF-16 units (a lone character wider than
            /// the limit aside), none is blank or padded, and the parts rejoin to the text:
            /// only the whitespace at a cut is dropped.
            #[test]
            fn split_parts_fit_and_rejoin_to_the_text(
                text in nasty_text_with(SEPARATORS),
                limit in 1usize..300,
            ) {
                let parts = split(&text, limit);
                for part in &parts {
                    prop_assert!(
                        char_len(part) <= limit || part.chars().count() == 1,
                        "{} units: {part:?}", char_len(part)
                    );
                    prop_assert!(!part.is_empty() && part.trim() == part, "{part:?}");
                }
                prop_assert_eq!(without_whitespace(&parts.concat()), without_whitespace(&text));
            }

            /// A whole reply, citations and buttons included, renders to messages Telegram
            /// takes: within 4,096 units, never empty, the keyboard only on the last.
            #[test]
            fn every_rendered_message_is_within_telegram_limit(
                text in nasty_text_with(SEPARATORS),
                titles in proptest::collection::vec(nasty_text(), 0..3),
                payloads in proptest::collection::vec(nasty_text(), 0..3),
                long in any::<bool>(),
            ) {
                let text = if long { text.repeat(4096 / text.len().max(1) + 2) } else { text };
                let mut reply = Reply::new(ReplyKind::Answer, &text);
                reply.citations = titles
                    .into_iter()
                    .map(|title| Citation { title, source: "source.md".to_owned() })
                    .collect();
                reply.quick_replies = payloads
                    .into_iter()
                    .map(|payload| QuickReply { label: payload.clone(), payload })
                    .collect();
                let parts = render(&reply);
                prop_assert!(!parts.is_empty());
                for (index, part) in parts.iter().enumerate() {
                    prop_assert!(char_len(&part.plain) <= MAX_MESSAGE_CHARS, "{}", char_len(&part.plain));
                    prop_assert!(!part.plain.trim().is_empty() && !part.html.trim().is_empty());
                    if index + 1 < parts.len() {
                        prop_assert!(part.markup.is_none());
                    }
                }
                if let Some(ReplyMarkup::InlineKeyboard(keyboard)) = &parts[parts.len() - 1].markup {
                    for button in keyboard.inline_keyboard.iter().flatten() {
                        let json = serde_json::to_value(button).expect("a button serializes");
                        let data = json["callback_data"].as_str().unwrap_or_default();
                        prop_assert!(!data.is_empty() && data.len() <= MAX_CALLBACK_BYTES);
                    }
                }
            }
        }
    }

    #[test]
    fn quick_replies_become_an_inline_keyboard_on_the_last_part() {
        let mut rating = Reply::new(ReplyKind::Prompt, "Оцените, пожалуйста");
        rating.quick_replies = (1..=5)
            .map(|value| QuickReply {
                label: value.to_string(),
                payload: format!("rate:{value}"),
            })
            .collect();
        let parts = render(&rating);
        let Some(ReplyMarkup::InlineKeyboard(keyboard)) = &parts[0].markup else {
            panic!("no inline keyboard");
        };
        assert_eq!(keyboard.inline_keyboard.len(), 1);
        assert_eq!(keyboard.inline_keyboard[0].len(), 5);
        let json = serde_json::to_value(&parts[0].markup).expect("serializes");
        assert_eq!(json["inline_keyboard"][0][4]["callback_data"], "rate:5");

        let mut too_long = Reply::new(ReplyKind::Declined, "Не знаю");
        too_long.quick_replies = vec![
            QuickReply {
                label: "Позвать менеджера".to_owned(),
                payload: "handoff".to_owned(),
            },
            QuickReply {
                label: "x".to_owned(),
                payload: "ы".repeat(33),
            },
        ];
        let Some(ReplyMarkup::InlineKeyboard(keyboard)) = &render(&too_long)[0].markup else {
            panic!("no inline keyboard");
        };
        assert_eq!(keyboard.inline_keyboard.len(), 1);
    }

    #[test]
    fn a_contact_request_offers_the_share_my_phone_button() {
        let mut ask = Reply::new(ReplyKind::Prompt, "How can our manager reach you?");
        ask.request_contact = true;
        let json = serde_json::to_value(&render(&ask)[0].markup).expect("serializes");
        assert_eq!(json["keyboard"][0][0]["request_contact"], true);
        assert_eq!(json["keyboard"][0][0]["text"], "📱 Share my phone number");
        assert_eq!(json["one_time_keyboard"], true);
        let done = Reply::new(ReplyKind::Confirmation, "Спасибо, записал.");
        let json = serde_json::to_value(&render(&done)[0].markup).expect("serializes");
        assert_eq!(json["remove_keyboard"], true);
    }
}
