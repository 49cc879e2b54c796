//! The prospect's language, detected per message from its script.

use serde::{Deserialize, Serialize};

/// A language the assistant speaks. Every configured phrase exists in each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ru,
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// Parses `ru` or `en` (any case); anything else is `None`.
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "ru" | "rus" | "russian" => Some(Lang::Ru),
            "en" | "eng" | "english" => Some(Lang::En),
            _ => None,
        }
    }

    /// Detects the language of `text` from the letters it is written in.
    ///
    /// Cyrillic letters mean Russian, Latin letters English; a text with
    /// neither (digits, emoji, a phone number) is `None`, so that the caller
    /// keeps the conversation's language. Product names in Latin inside a
    /// Russian sentence ("интеграция с Ozon") do not flip it: Cyrillic wins
    /// when it makes at least a quarter of the letters. E-mail addresses and links are
    /// Latin whatever the language, so they do not count: a Russian prospect who answers with
    /// just their e-mail is still spoken to in Russian.
    pub fn detect(text: &str) -> Option<Lang> {
        let (mut cyrillic, mut latin) = (0usize, 0usize);
        let words = text.split_whitespace().filter(|word| {
            !(word.contains('@') || word.contains("://") || word.starts_with("www."))
        });
        for ch in words.flat_map(str::chars) {
            if ('\u{0400}'..='\u{04FF}').contains(&ch) {
                cyrillic += 1;
            } else if ch.is_ascii_alphabetic() {
                latin += 1;
            }
        }
        match (cyrillic, latin) {
            (0, 0) => None,
            (c, l) if c * 3 >= l => Some(Lang::Ru),
            _ => Some(Lang::En),
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_script() {
        let table = [
            ("привет", Some(Lang::Ru)),
            ("hi there", Some(Lang::En)),
            ("интеграция с Ozon и Wildberries", Some(Lang::Ru)),
            ("how much is the T-60?", Some(Lang::En)),
            ("+7 921 555-12-34", None),
            ("anna.smirnova@example.com", None),
            ("+7 921 555-12-34\nanna@example.com", None),
            ("Анна, почта anna@example.com", Some(Lang::Ru)),
            ("my e-mail is anna@example.com", Some(Lang::En)),
            ("смотрите https://example.com/pricing", Some(Lang::Ru)),
            ("", None),
        ];
        for (text, expected) in table {
            assert_eq!(Lang::detect(text), expected, "{text}");
        }
    }
}
