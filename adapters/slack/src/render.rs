//! A reply as Slack messages (pure): mrkdwn escaped, long text split within Slack's limits,
//! the cited documents shown under the last part.
//!
//! Slack's limits: a section block's text is at most 3,000 characters, a message at most 50
//! blocks, and a message's `text` is truncated above 40,000 characters (4,000 is the
//! recommended ceiling). Each part is one message with one section, at most
//! [`SECTION_CHARS`] characters *after* escaping, so `&` turning into `&amp;` can never push a
//! part over the limit; the `text` fallback (notifications, screen readers) is the same text.

use closer_model::{Citation, Reply};
use slack_morphism::prelude::*;

/// The most characters of mrkdwn in one part (Slack's section limit).
pub const SECTION_CHARS: usize = 3000;
/// The most characters of the citations line.
const CITATIONS_CHARS: usize = 1000;

/// Escapes text for mrkdwn: Slack reads `&`, `<` and `>` as control characters (`<@U1>`,
/// `<!channel>`, `<url|label>`), so a prospect's or a document's `<` must not become a mention.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Splits `text` into escaped parts of at most `limit` characters each, at paragraph breaks,
/// then line breaks, then spaces, and only inside a word when a word alone is too long.
pub fn split_escaped(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(8);
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    for piece in pieces(text) {
        let escaped = escape(piece);
        let chars = escaped.chars().count();
        if current_chars + chars <= limit {
            current.push_str(&escaped);
            current_chars += chars;
            continue;
        }
        if !current.trim().is_empty() {
            parts.push(current.trim().to_owned());
        }
        current = String::new();
        current_chars = 0;
        if chars <= limit {
            current.push_str(&escaped);
            current_chars = chars;
            continue;
        }
        // One word longer than a part: cut it, never inside an escape sequence.
        for unit in escape_units(piece) {
            let unit_chars = unit.chars().count();
            if current_chars + unit_chars > limit {
                parts.push(std::mem::take(&mut current));
                current_chars = 0;
            }
            current.push_str(&unit);
            current_chars += unit_chars;
        }
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts
}

/// The text in pieces that end at a space or line break (kept with the piece), preferring
/// paragraph ends: splitting between pieces never cuts a word.
fn pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (index, character) in text.char_indices() {
        if character == ' ' || character == '\n' {
            let end = index + character.len_utf8();
            pieces.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Each character of `text` escaped on its own: the units a long word may be cut between.
fn escape_units(text: &str) -> Vec<String> {
    text.chars().map(|c| escape(&c.to_string())).collect()
}

/// The cited documents as one mrkdwn line: `Sources: Title (file.md) · …`.
pub fn citations_line(citations: &[Citation]) -> Option<String> {
    if citations.is_empty() {
        return None;
    }
    let mut line = String::from("Sources: ");
    for (index, citation) in citations.iter().enumerate() {
        let item = format!(
            "{}_{}_ (`{}`)",
            if index == 0 { "" } else { " · " },
            escape(&citation.title),
            escape(&citation.source)
        );
        if line.chars().count() + item.chars().count() > CITATIONS_CHARS {
            line.push_str(" …");
            break;
        }
        line.push_str(&item);
    }
    Some(line)
}

/// One Slack message.
pub fn message(mrkdwn: &str, context: Option<&str>) -> SlackMessageContent {
    let mut blocks = vec![SlackBlock::Section(SlackSectionBlock::new().with_text(
        SlackBlockText::MarkDown(SlackBlockMarkDownText::new(mrkdwn.to_owned())),
    ))];
    let mut text = mrkdwn.to_owned();
    if let Some(context) = context {
        blocks.push(SlackBlock::Context(SlackContextBlock::new(vec![
            SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(context.to_owned())),
        ])));
        text.push('\n');
        text.push_str(context);
    }
    SlackMessageContent::new()
        .with_text(text)
        .with_blocks(blocks)
}

/// A reply as the messages to post, in order; the citations go under the last one.
pub fn render(reply: &Reply) -> Vec<SlackMessageContent> {
    let mut parts = split_escaped(&reply.text, SECTION_CHARS);
    if parts.is_empty() {
        parts.push(" ".to_owned());
    }
    let citations = citations_line(&reply.citations);
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(index, part)| {
            message(
                part,
                if index == last {
                    citations.as_deref()
                } else {
                    None
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use closer_model::ReplyKind;
    use expect_test::expect;

    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape("a < b && c > d <@U123> <!channel>"),
            "a &lt; b &amp;&amp; c &gt; d &lt;@U123&gt; &lt;!channel&gt;"
        );
        assert_eq!(escape("*bold* _it_ — ok"), "*bold* _it_ — ok");
    }

    #[test]
    fn long_text_splits_at_spaces_within_the_limit_after_escaping() {
        let text = "word&word ".repeat(700);
        let parts = split_escaped(&text, SECTION_CHARS);
        assert!(parts.len() >= 3, "{}", parts.len());
        for part in &parts {
            assert!(part.chars().count() <= SECTION_CHARS);
            assert!(part.starts_with("word&amp;word"), "cut inside a word");
        }
        let joined: String = parts.join(" ");
        assert_eq!(joined.matches("&amp;").count(), 700);
    }

    #[test]
    fn a_word_longer_than_a_part_is_cut_but_never_inside_an_escape() {
        let parts = split_escaped(&"<".repeat(20), 9);
        assert_eq!(parts, ["&lt;&lt;", "&lt;&lt;"].repeat(5));
    }

    #[test]
    fn a_reply_renders_with_its_sources() {
        let reply = Reply {
            kind: ReplyKind::Answer,
            text: "Tariff <Pro> costs 1 900 ₽ & more".to_owned(),
            citations: vec![Citation {
                title: "Тарифы".to_owned(),
                source: "tarify.md".to_owned(),
            }],
            ..Reply::default()
        };
        let rendered = serde_json::to_string_pretty(&render(&reply)).unwrap();
        expect![[r#"
            [
              {
                "text": "Tariff &lt;Pro&gt; costs 1 900 ₽ &amp; more\nSources: _Тарифы_ (`tarify.md`)",
                "blocks": [
                  {
                    "type": "section",
                    "text": {
                      "type": "mrkdwn",
                      "text": "Tariff &lt;Pro&gt; costs 1 900 ₽ &amp; more"
                    }
                  },
                  {
                    "type": "context",
                    "elements": [
                      {
                        "type": "mrkdwn",
                        "text": "Sources: _Тарифы_ (`tarify.md`)"
                      }
                    ]
                  }
                ]
              }
            ]"#]]
        .assert_eq(&rendered);
    }
}
