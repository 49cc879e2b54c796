//! What a prospect's message means for the dialog: small talk, a question, an objection,
//! a request for a person, buying intent, a qualification answer. Pure pattern matching
//! against the playbook's recognisers.

use closer_model::{Lang, ObjectionKind};

use crate::config::DialogConfig;
use crate::meaning::Intent;

/// Lower case with `ё` read as `е`: the form every playbook pattern is matched against.
pub fn normalise(text: &str) -> String {
    text.to_lowercase().replace('ё', "е")
}

/// The objection kinds `text` raises, in the playbook's order, each once.
pub fn detect_objections(config: &DialogConfig, text: &str, lang: Lang) -> Vec<ObjectionKind> {
    let normalised = normalise(&bounded(text));
    config
        .objections
        .iter()
        .filter(|rule| rule.triggers.is_match(&normalised, lang))
        .map(|rule| rule.kind)
        .collect()
}

/// The objection kinds a message raises: those its patterns match, and those recognised by
/// meaning (`meaning`, from the playbook's examples), each once, in the kinds' own order.
pub fn objections(
    config: &DialogConfig,
    text: &str,
    lang: Lang,
    meaning: &[Intent],
) -> Vec<ObjectionKind> {
    let mut kinds = detect_objections(config, text, lang);
    for intent in meaning {
        if let Intent::Objection(kind) = *intent {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    kinds.sort();
    kinds
}

/// The knowledge-base query for a message: its text, plus the playbook's search words of
/// every objection it raises, so that the company's objection-handling guide is found.
pub fn knowledge_query(
    config: &DialogConfig,
    text: &str,
    lang: Lang,
    meaning: &[Intent],
) -> String {
    let kinds = objections(config, text, lang, meaning);
    let mut query = text.to_owned();
    for rule in config
        .objections
        .iter()
        .filter(|rule| kinds.contains(&rule.kind))
    {
        if let Some(search) = &rule.search {
            query.push_str(". ");
            query.push_str(search.get(lang));
        }
    }
    query
}

/// The knowledge-base queries to try for a message, in order, until one finds a good answer.
///
/// A message that raises no objection is searched as it is. An objection is searched with
/// the playbook's `search` words for it added (so that the company's objection-handling guide
/// is found), then in the prospect's own words alone (the search words can dilute a question
/// that merely sounds like an objection), and last with the kind's search words alone: the
/// prospect's talk ("honestly", "for us") can sink both others, and an answer from the
/// company's guide is better than the playbook's text without facts.
pub fn knowledge_queries(
    config: &DialogConfig,
    text: &str,
    lang: Lang,
    meaning: &[Intent],
) -> Vec<String> {
    let kinds = objections(config, text, lang, meaning);
    let first_search = config
        .objections
        .iter()
        .filter(|rule| kinds.contains(&rule.kind))
        .find_map(|rule| rule.search.as_ref().map(|search| search.get(lang)));
    let Some(first_search) = first_search else {
        return vec![text.to_owned()];
    };
    let mut queries = vec![
        knowledge_query(config, text, lang, meaning),
        text.to_owned(),
        first_search.to_owned(),
    ];
    queries.dedup();
    queries
}

/// The first characters of a message: enough to understand it, and it keeps matching fast
/// on a pasted 10k-character text.
pub fn bounded(text: &str) -> String {
    text.chars().take(2000).collect()
}

/// Which kind of small talk a message is, when it is nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Smalltalk {
    Greeting,
    Thanks,
    Farewell,
    /// "ты бот?", "who am I talking to?", "what can you do?"
    AboutAssistant,
    /// "ок", "понятно": nothing to answer but politeness.
    Acknowledgement,
}

/// Recognises small talk: a message about the assistant itself, or one that is nothing but
/// greetings, thanks, farewells and acknowledgements.
pub fn detect_smalltalk(config: &DialogConfig, normalised: &str, lang: Lang) -> Option<Smalltalk> {
    let detect = &config.detect;
    if detect.bot_question.is_match(normalised, lang) {
        return Some(Smalltalk::AboutAssistant);
    }
    let mut rest = normalised.to_owned();
    let mut found = None;
    for (kind, patterns) in [
        (Smalltalk::Farewell, &detect.farewell),
        (Smalltalk::Thanks, &detect.thanks),
        (Smalltalk::Greeting, &detect.greeting),
        (Smalltalk::Acknowledgement, &detect.acknowledgement),
    ] {
        let stripped = patterns.remove_all(&rest);
        if stripped != rest && found.is_none() {
            found = Some(kind);
        }
        rest = stripped;
    }
    let leftover_letters = rest.chars().filter(|ch| ch.is_alphabetic()).count();
    if leftover_letters == 0 {
        // A message with no letters at all (an emoji) is small talk too: it asks nothing.
        return found.or(Some(Smalltalk::Acknowledgement));
    }
    None
}

/// Whether the message asks something: a question mark, a question word, a request.
pub fn is_question(config: &DialogConfig, text: &str, normalised: &str, lang: Lang) -> bool {
    text.contains('?') || config.detect.question.is_match(normalised, lang)
}

/// Words that may surround a rating digit: "ставлю 5", "оценка 4", "5 stars", "4 из 5".
const RATING_WORDS: &[&str] = &[
    "оценка",
    "оценку",
    "ставлю",
    "на",
    "балл",
    "балла",
    "баллов",
    "звезд",
    "звезды",
    "звезда",
    "из",
    "rate",
    "rating",
    "star",
    "stars",
    "i",
    "give",
    "out",
    "of",
];

/// The rating in a message that is nothing but a rating: "5", "4!", "ставлю 5", "4 из 5",
/// "5/5". A message about anything else ("2 склада") is not a rating.
pub fn bare_rating(text: &str) -> Option<u8> {
    let lowered = normalise(text);
    let words_ok = lowered
        .split(|ch: char| !ch.is_alphabetic())
        .filter(|word| !word.is_empty())
        .all(|word| RATING_WORDS.contains(&word));
    if !words_ok {
        return None;
    }
    let digits: Vec<u32> = text.chars().filter_map(|ch| ch.to_digit(10)).collect();
    let value = match digits.as_slice() {
        [value] => *value,
        [value, 5] if lowered.contains('/') || lowered.contains("из") || lowered.contains("of") => {
            *value
        }
        _ => return None,
    };
    u8::try_from(value)
        .ok()
        .filter(|value| (1..=5).contains(value))
}

/// The clause of `text` around the byte range `[start, end)` of its normalised form:
/// the qualification answer in the prospect's words ("около 40 заказов в день").
pub fn clause_around(normalised: &str, start: usize, end: usize) -> String {
    let is_boundary = |ch: char| matches!(ch, '.' | '!' | '?' | ';' | '\n' | ',');
    let before = normalised.get(..start).unwrap_or_default();
    let after = normalised.get(end..).unwrap_or_default();
    let clause_start = before.rfind(is_boundary).map_or(0, |index| index + 1);
    let clause_end = after
        .find(is_boundary)
        .map_or(normalised.len(), |index| end + index);
    let clause = normalised.get(clause_start..clause_end).unwrap_or_default();
    truncate_words(clause.trim(), 120)
}

/// At most `limit` characters, cut at a word boundary.
pub fn truncate_words(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let cut: String = text.chars().take(limit).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(index) if index > limit / 2 => cut[..index].to_owned(),
        _ => cut,
    };
    format!("{}…", cut.trim_end_matches([',', ';', ' ', '.']))
}

/// At most `limit` characters, cut after the last sentence that fits (else at a word).
pub fn truncate_sentences(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    match cut.rfind(['.', '!', '?', '\n']) {
        Some(index) if index >= cut.len() / 3 => cut[..=index].trim_end().to_owned(),
        _ => truncate_words(text, limit.saturating_sub(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_read_only_from_ratings() {
        let table = [
            ("5", Some(5)),
            ("4!", Some(4)),
            (" 3 ", Some(3)),
            ("ставлю 5", Some(5)),
            ("4 из 5", Some(4)),
            ("5/5", Some(5)),
            ("5 stars", Some(5)),
            ("0", None),
            ("6", None),
            ("2 склада", None),
            ("у нас 3 мастера", None),
            ("45", None),
            ("", None),
            ("🙂", None),
        ];
        for (text, expected) in table {
            assert_eq!(bare_rating(text), expected, "{text}");
        }
    }

    #[test]
    fn truncation_keeps_whole_sentences_and_words() {
        let text = "Первое предложение. Второе предложение подлиннее. Третье.";
        assert_eq!(truncate_sentences(text, 40), "Первое предложение.");
        assert_eq!(truncate_sentences(text, 400), text);
        assert!(truncate_words(&"слово ".repeat(100), 50).chars().count() <= 51);
        let emoji = "🙂".repeat(1000);
        assert!(truncate_sentences(&emoji, 700).chars().count() <= 700);
    }
}
