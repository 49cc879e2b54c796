//! The playbook: persona, phrases, qualification questions, objection triggers and the
//! recognisers of intents, parsed from `config/playbook.toml` and validated on load.

use std::collections::BTreeMap;

use closer_model::{Lang, ObjectionKind};
use regex::Regex;
use serde::Deserialize;

use crate::meaning::{Example, Intent, Thresholds};

/// Why a playbook was rejected; the message names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not TOML, or has an unknown or missing key.
    #[error("the playbook is not valid TOML for Closer: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A trigger pattern is not a valid regular expression.
    #[error("pattern {pattern:?} in {key} is not a valid regular expression: {reason}")]
    Pattern {
        key: String,
        pattern: String,
        reason: String,
    },
    /// A phrase is empty in one of the languages.
    #[error("phrase {key} is empty in {lang}")]
    EmptyPhrase { key: String, lang: Lang },
    /// An objection section names no known objection kind.
    #[error("unknown objection kind {0:?}; known: price, timing, competitor, trust, need_to_think, no_budget, authority")]
    UnknownObjection(String),
    /// An `[examples]` key names no intent or objection kind.
    #[error("unknown key {key:?} in [examples]; known: {known}")]
    UnknownIntent { key: String, known: String },
    /// A recognition threshold is outside 0–1.
    #[error("recognition.{0} must be between 0 and 1")]
    BadThreshold(&'static str),
    /// An example phrase is empty.
    #[error("an example of {0} in [examples] is empty")]
    EmptyExample(String),
    /// A qualification key is not one of need, volume, timeline, budget, or is repeated.
    #[error(
        "qualification key {0:?} is unknown or repeated; known: need, volume, timeline, budget"
    )]
    BadQualificationKey(String),
}

/// A phrase in every language the assistant speaks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phrase {
    pub ru: String,
    pub en: String,
}

impl Phrase {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ru => &self.ru,
            Lang::En => &self.en,
        }
    }

    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        for lang in [Lang::Ru, Lang::En] {
            if self.get(lang).trim().is_empty() {
                return Err(ConfigError::EmptyPhrase {
                    key: key.to_owned(),
                    lang,
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternsRaw {
    ru: Vec<String>,
    en: Vec<String>,
}

/// Regular expressions per language, matched case-insensitively against text in which
/// `ё` is read as `е`.
#[derive(Debug, Clone)]
pub struct Patterns {
    ru: Vec<Regex>,
    en: Vec<Regex>,
}

impl Patterns {
    fn compile(raw: &PatternsRaw, key: &str) -> Result<Patterns, ConfigError> {
        let compile_list = |list: &[String]| -> Result<Vec<Regex>, ConfigError> {
            list.iter()
                .map(|pattern| {
                    Regex::new(&format!("(?i){pattern}")).map_err(|error| ConfigError::Pattern {
                        key: key.to_owned(),
                        pattern: pattern.clone(),
                        reason: error.to_string(),
                    })
                })
                .collect()
        };
        Ok(Patterns {
            ru: compile_list(&raw.ru)?,
            en: compile_list(&raw.en)?,
        })
    }

    /// The patterns of `lang` first, then the other language's: a Russian message may
    /// quote an English phrase and the other way round.
    fn ordered(&self, lang: Lang) -> impl Iterator<Item = &Regex> {
        let (first, second) = match lang {
            Lang::Ru => (&self.ru, &self.en),
            Lang::En => (&self.en, &self.ru),
        };
        first.iter().chain(second.iter())
    }

    /// Whether any pattern matches `normalised` (lower case, `ё` as `е`).
    pub fn is_match(&self, normalised: &str, lang: Lang) -> bool {
        self.ordered(lang)
            .any(|pattern| pattern.is_match(normalised))
    }

    /// The first match's byte range in `normalised`.
    pub fn find(&self, normalised: &str, lang: Lang) -> Option<(usize, usize)> {
        self.ordered(lang)
            .find_map(|pattern| pattern.find(normalised))
            .map(|found| (found.start(), found.end()))
    }

    /// `normalised` with every match of every pattern replaced by a space.
    pub fn remove_all(&self, normalised: &str) -> String {
        let mut text = normalised.to_owned();
        for pattern in self.ru.iter().chain(self.en.iter()) {
            text = pattern.replace_all(&text, " ").into_owned();
        }
        text
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    persona: Persona,
    phrases: Phrases,
    #[serde(default)]
    qualification: Vec<QualificationRaw>,
    #[serde(default)]
    objections: BTreeMap<String, ObjectionRaw>,
    detect: DetectRaw,
    /// Example phrases of intents and objection kinds, recognised by meaning.
    #[serde(default)]
    examples: BTreeMap<String, ExamplesRaw>,
    /// How near a message must be to an intent's examples to be recognised by meaning.
    #[serde(default)]
    recognition: Option<RecognitionRaw>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecognitionRaw {
    min_similarity: f32,
    min_margin: f32,
    clause_min_similarity: f32,
    clause_min_margin: f32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExamplesRaw {
    #[serde(default)]
    ru: Vec<String>,
    #[serde(default)]
    en: Vec<String>,
}

/// Who the assistant is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Replaces `{assistant}` in phrases.
    pub assistant_name: Phrase,
    /// Replaces `{company}` in phrases.
    pub company_name: Phrase,
    /// A note on the tone for whoever edits the phrases (and for a future language model).
    pub tone: String,
}

/// Everything the assistant says that is not taken from the knowledge base.
/// `{assistant}`, `{company}` and `{name}` (the prospect's name, or nothing) are replaced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phrases {
    pub greeting: Phrase,
    pub smalltalk_greeting: Phrase,
    pub smalltalk_thanks: Phrase,
    pub smalltalk_bot: Phrase,
    pub smalltalk_farewell: Phrase,
    pub smalltalk_acknowledgement: Phrase,
    pub decline: Phrase,
    pub offer_person_button: Phrase,
    pub need_acknowledged: Phrase,
    pub contact_request: Phrase,
    pub contact_refused: Phrase,
    pub lead_confirmation: Phrase,
    pub lead_updated: Phrase,
    pub rating_request: Phrase,
    pub rating_thanks: Phrase,
    pub handoff: Phrase,
    pub handoff_with_contact_request: Phrase,
    pub handoff_again: Phrase,
    pub unsupported: Phrase,
}

impl Phrases {
    fn validate(&self) -> Result<(), ConfigError> {
        let all = [
            ("greeting", &self.greeting),
            ("smalltalk_greeting", &self.smalltalk_greeting),
            ("smalltalk_thanks", &self.smalltalk_thanks),
            ("smalltalk_bot", &self.smalltalk_bot),
            ("smalltalk_farewell", &self.smalltalk_farewell),
            ("smalltalk_acknowledgement", &self.smalltalk_acknowledgement),
            ("decline", &self.decline),
            ("offer_person_button", &self.offer_person_button),
            ("need_acknowledged", &self.need_acknowledged),
            ("contact_request", &self.contact_request),
            ("contact_refused", &self.contact_refused),
            ("lead_confirmation", &self.lead_confirmation),
            ("lead_updated", &self.lead_updated),
            ("rating_request", &self.rating_request),
            ("rating_thanks", &self.rating_thanks),
            ("handoff", &self.handoff),
            (
                "handoff_with_contact_request",
                &self.handoff_with_contact_request,
            ),
            ("handoff_again", &self.handoff_again),
            ("unsupported", &self.unsupported),
        ];
        for (key, phrase) in all {
            phrase.validate(&format!("phrases.{key}"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct QualificationRaw {
    key: String,
    question: Phrase,
    #[serde(default)]
    ask_from_turn: u32,
    detect: PatternsRaw,
}

/// A qualifying question and how to recognise its answer in free text.
#[derive(Debug, Clone)]
pub struct QualificationQuestion {
    /// `need`, `volume`, `timeline` or `budget`.
    pub key: String,
    pub question: Phrase,
    /// Not asked before the prospect's n-th message, so the first turns are not an interrogation.
    pub ask_from_turn: u32,
    /// Recognises an answer given unprompted ("40 заказов в день").
    pub detect: Patterns,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectionRaw {
    triggers: PatternsRaw,
    fallback: Phrase,
    #[serde(default)]
    search: Option<Phrase>,
}

/// How one objection kind is recognised and answered when the knowledge base has nothing.
#[derive(Debug, Clone)]
pub struct ObjectionRule {
    pub kind: ObjectionKind,
    pub triggers: Patterns,
    pub fallback: Phrase,
    /// Words added to the knowledge-base search when this objection is recognised, so that
    /// the company's objection-handling guide is found however the prospect put it.
    pub search: Option<Phrase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectRaw {
    greeting: PatternsRaw,
    thanks: PatternsRaw,
    farewell: PatternsRaw,
    acknowledgement: PatternsRaw,
    bot_question: PatternsRaw,
    handoff: PatternsRaw,
    buying_intent: PatternsRaw,
    contact_refusal: PatternsRaw,
    question: PatternsRaw,
    need: PatternsRaw,
    /// Left out: no message is taken for a statement about the prospect.
    #[serde(default)]
    statement: PatternsRaw,
}

/// Recognisers of the prospect's intents, from the playbook.
#[derive(Debug, Clone)]
pub struct Detectors {
    pub greeting: Patterns,
    pub thanks: Patterns,
    pub farewell: Patterns,
    /// "ок", "понятно", "cool": words that carry no request on their own.
    pub acknowledgement: Patterns,
    pub bot_question: Patterns,
    pub handoff: Patterns,
    pub buying_intent: Patterns,
    pub contact_refusal: Patterns,
    /// Question words for questions typed without a question mark.
    pub question: Patterns,
    /// A statement of what the prospect needs ("нужен ТСД", "looking for a WMS").
    pub need: Patterns,
    /// The prospect speaking of themselves ("у нас", "мы", "we", "our"): a message that does
    /// this and asks nothing is a statement to acknowledge, never a question to decline.
    pub statement: Patterns,
}

/// The whole playbook, validated.
#[derive(Debug, Clone)]
pub struct DialogConfig {
    pub persona: Persona,
    pub phrases: Phrases,
    pub qualification: Vec<QualificationQuestion>,
    pub objections: Vec<ObjectionRule>,
    pub detect: Detectors,
    /// Example phrases of intents and objection kinds, recognised by meaning (`[examples]`).
    pub examples: Vec<Example>,
    /// How near and how clearly nearest a message must be to an intent's examples
    /// (`[recognition]`).
    pub recognition: Thresholds,
}

const QUALIFICATION_KEYS: [&str; 4] = ["need", "volume", "timeline", "budget"];

impl DialogConfig {
    /// Parses and validates the playbook's text.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] for bad TOML or unknown keys, [`ConfigError::Pattern`] for a bad
    /// regular expression, [`ConfigError::EmptyPhrase`] for a phrase missing in a language,
    /// [`ConfigError::UnknownObjection`] and [`ConfigError::BadQualificationKey`] for bad names.
    pub fn from_toml_str(text: &str) -> Result<DialogConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text)?;
        raw.persona
            .assistant_name
            .validate("persona.assistant_name")?;
        raw.persona.company_name.validate("persona.company_name")?;
        raw.phrases.validate()?;

        let mut qualification = Vec::new();
        for question in &raw.qualification {
            let known = QUALIFICATION_KEYS.contains(&question.key.as_str());
            let repeated = qualification
                .iter()
                .any(|seen: &QualificationQuestion| seen.key == question.key);
            if !known || repeated {
                return Err(ConfigError::BadQualificationKey(question.key.clone()));
            }
            let key = format!("qualification.{}", question.key);
            question.question.validate(&key)?;
            qualification.push(QualificationQuestion {
                key: question.key.clone(),
                question: question.question.clone(),
                ask_from_turn: question.ask_from_turn,
                detect: Patterns::compile(&question.detect, &key)?,
            });
        }

        let mut objections = Vec::new();
        for (name, rule) in &raw.objections {
            let kind = ObjectionKind::parse(name)
                .ok_or_else(|| ConfigError::UnknownObjection(name.clone()))?;
            let key = format!("objections.{name}");
            rule.fallback.validate(&key)?;
            if let Some(search) = &rule.search {
                search.validate(&format!("{key}.search"))?;
            }
            objections.push(ObjectionRule {
                kind,
                triggers: Patterns::compile(&rule.triggers, &key)?,
                fallback: rule.fallback.clone(),
                search: rule.search.clone(),
            });
        }
        // The order of kinds is fixed, not the file's, so that results are stable.
        objections.sort_by_key(|rule| rule.kind);

        let detect = &raw.detect;
        let compile =
            |raw: &PatternsRaw, key: &str| Patterns::compile(raw, &format!("detect.{key}"));
        let detect = Detectors {
            greeting: compile(&detect.greeting, "greeting")?,
            thanks: compile(&detect.thanks, "thanks")?,
            farewell: compile(&detect.farewell, "farewell")?,
            acknowledgement: compile(&detect.acknowledgement, "acknowledgement")?,
            bot_question: compile(&detect.bot_question, "bot_question")?,
            handoff: compile(&detect.handoff, "handoff")?,
            buying_intent: compile(&detect.buying_intent, "buying_intent")?,
            contact_refusal: compile(&detect.contact_refusal, "contact_refusal")?,
            question: compile(&detect.question, "question")?,
            need: compile(&detect.need, "need")?,
            statement: compile(&detect.statement, "statement")?,
        };

        let mut examples = Vec::new();
        for (key, raw_examples) in &raw.examples {
            let intent = Intent::parse(key).ok_or_else(|| ConfigError::UnknownIntent {
                key: key.clone(),
                known: Intent::known_keys(),
            })?;
            for (lang, texts) in [(Lang::Ru, &raw_examples.ru), (Lang::En, &raw_examples.en)] {
                for text in texts {
                    if text.trim().is_empty() {
                        return Err(ConfigError::EmptyExample(key.clone()));
                    }
                    examples.push(Example {
                        intent,
                        lang,
                        text: text.trim().to_owned(),
                    });
                }
            }
        }

        let recognition = match &raw.recognition {
            Some(raw) => {
                for (key, value) in [
                    ("min_similarity", raw.min_similarity),
                    ("min_margin", raw.min_margin),
                    ("clause_min_similarity", raw.clause_min_similarity),
                    ("clause_min_margin", raw.clause_min_margin),
                ] {
                    if !(0.0..=1.0).contains(&value) {
                        return Err(ConfigError::BadThreshold(key));
                    }
                }
                Thresholds {
                    min_similarity: raw.min_similarity,
                    min_margin: raw.min_margin,
                    clause_min_similarity: raw.clause_min_similarity,
                    clause_min_margin: raw.clause_min_margin,
                }
            }
            None => Thresholds::default(),
        };

        Ok(DialogConfig {
            persona: raw.persona,
            phrases: raw.phrases,
            qualification,
            objections,
            detect,
            examples,
            recognition,
        })
    }

    /// A phrase with `{assistant}`, `{company}` and `{name}` filled in. Without a name,
    /// the punctuation around the placeholder is tidied ("Спасибо, {name}!" → "Спасибо!").
    pub fn render(&self, phrase: &Phrase, lang: Lang, name: Option<&str>) -> String {
        let text = phrase
            .get(lang)
            .replace("{assistant}", self.persona.assistant_name.get(lang))
            .replace("{company}", self.persona.company_name.get(lang));
        match name {
            Some(name) => text.replace("{name}", name),
            None => text
                .replace(", {name}", "")
                .replace(" {name}", "")
                .replace("{name}", ""),
        }
    }
}
