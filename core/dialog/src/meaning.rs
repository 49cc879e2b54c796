//! Recognition by meaning: a message compared with the playbook's examples of every intent and
//! objection kind (`[examples]`), through sentence embeddings the engine computes.
//!
//! The dialog stays pure: the engine embeds the examples once and each message as it comes,
//! and hands the dialog the intent recognised ([`Input::meaning`](crate::Input)). The decision
//! itself is here, as data in, data out: the intent whose examples stand nearest to the message
//! wins when it is near enough and clearly nearer than any other intent, `other` included (the
//! examples of messages that are none of them: questions, needs, introductions). So "сколько
//! стоит?" stays a question while "за эти деньги я лучше сам соберу" is a price objection,
//! however few words either shares with a pattern.

use std::sync::LazyLock;

use closer_model::{Lang, ObjectionKind};
use regex::Regex;

use crate::understand::Smalltalk;

/// What an example teaches: an intent the dialog acts on, an objection kind, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Intent {
    /// The prospect asks for a person.
    Handoff,
    /// The prospect wants to buy, order or start ("send the invoice", "let's begin").
    BuyingIntent,
    /// The prospect will not leave contact details.
    ContactRefusal,
    /// An objection of this kind.
    Objection(ObjectionKind),
    /// Small talk of this kind ("хорошего вам дня!", "thx, really helpful"): recognised on a
    /// whole message only, never on a clause of one that may ask something too.
    Smalltalk(Smalltalk),
    /// None of these: a question, a need, an introduction, small talk.
    Other,
}

impl Intent {
    /// The intents the playbook's `[examples]` may name, other than the objection kinds.
    const NAMED: [(&'static str, Intent); 8] = [
        ("handoff", Intent::Handoff),
        ("buying_intent", Intent::BuyingIntent),
        ("contact_refusal", Intent::ContactRefusal),
        ("greeting", Intent::Smalltalk(Smalltalk::Greeting)),
        ("thanks", Intent::Smalltalk(Smalltalk::Thanks)),
        ("farewell", Intent::Smalltalk(Smalltalk::Farewell)),
        ("chitchat", Intent::Smalltalk(Smalltalk::Acknowledgement)),
        ("other", Intent::Other),
    ];

    /// The intent a key of `[examples]` names: `handoff`, `buying_intent`, `contact_refusal`,
    /// `other` or an objection kind (`price`, `timing`, …).
    pub fn parse(key: &str) -> Option<Intent> {
        Intent::NAMED
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, intent)| *intent)
            .or_else(|| ObjectionKind::parse(key).map(Intent::Objection))
    }

    /// The key naming the intent in the playbook and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Objection(kind) => kind.as_str(),
            other => Intent::NAMED
                .iter()
                .find(|(_, intent)| *intent == other)
                .map_or("other", |(name, _)| name),
        }
    }

    /// Every key `[examples]` accepts, for the error naming an unknown one.
    pub fn known_keys() -> String {
        let mut keys: Vec<&str> = Intent::NAMED.iter().map(|(name, _)| *name).collect();
        keys.extend(ObjectionKind::ALL.iter().map(|kind| kind.as_str()));
        keys.join(", ")
    }
}

/// One example phrase from the playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub intent: Intent,
    pub lang: Lang,
    pub text: String,
}

/// How near the nearest examples of the winning intent must be (cosine similarity of the
/// embeddings), and by how much nearer than those of any other intent. Set from the
/// evaluation sets' dialogs as a whole (see ARCHITECTURE.md, "Recognition by meaning").
/// A clause of a longer message is held to its own, stricter pair: it is compared on its own
/// only when the whole message said nothing clear.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub min_similarity: f32,
    pub min_margin: f32,
    pub clause_min_similarity: f32,
    pub clause_min_margin: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_similarity: 0.3,
            min_margin: 0.03,
            clause_min_similarity: 0.35,
            clause_min_margin: 0.05,
        }
    }
}

/// Where a message divides into clauses that may each carry an intent: sentence ends, line
/// breaks, and before a contrast ("…, but our CFO decides", «…, но решает директор»).
static CLAUSE_BREAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)[.!?;…]+\s+|\n+|,?\s+(?:but|though|although|however|но|хотя|однако|только)\s+|,\s+(?:so|а|так что)\s+",
    )
    .expect("the clause pattern is valid")
});

/// The clauses of a message of more than one that have at least three words; empty for a
/// message that is a single clause (the whole message is compared already).
pub fn clauses(text: &str) -> Vec<&str> {
    let parts: Vec<&str> = CLAUSE_BREAK.split(text).map(str::trim).collect();
    if parts.iter().filter(|part| !part.is_empty()).count() < 2 {
        return Vec::new();
    }
    parts
        .into_iter()
        .filter(|part| part.split_whitespace().count() >= 3)
        .collect()
}

/// The examples' embeddings, ready to compare messages with.
///
/// The vectors are centred on the examples' mean before they are compared: a sentence
/// embedding model puts every short message in a narrow cone (any two score 0.8 or more), and
/// what sets a stance apart from a topic is in the small differences the shared part hides.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleIndex {
    intents: Vec<Intent>,
    /// The examples' vectors, centred and of unit length.
    vectors: Vec<Vec<f32>>,
    mean: Vec<f32>,
    thresholds: Thresholds,
}

/// How a message compares with the examples: the nearest intent, how near, and by how much
/// nearer than the next intent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    pub intent: Intent,
    pub similarity: f32,
    pub margin: f32,
}

/// How many of an intent's nearest examples are averaged: one stray example close to a message
/// does not decide alone.
const NEAREST_PER_INTENT: usize = 3;

impl ExampleIndex {
    /// The index over `examples` and their vectors, in the same order; `None` when the counts
    /// differ or there are no examples.
    pub fn new(
        examples: &[Example],
        vectors: Vec<Vec<f32>>,
        thresholds: Thresholds,
    ) -> Option<ExampleIndex> {
        let dim = vectors.first()?.len();
        if examples.len() != vectors.len() || vectors.iter().any(|vector| vector.len() != dim) {
            return None;
        }
        let mut mean = vec![0.0f32; dim];
        for vector in &vectors {
            for (sum, value) in mean.iter_mut().zip(vector) {
                *sum += value;
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let count = vectors.len() as f32;
        for sum in &mut mean {
            *sum /= count;
        }
        let vectors = vectors
            .iter()
            .map(|vector| centred(vector, &mean))
            .collect();
        Some(ExampleIndex {
            intents: examples.iter().map(|example| example.intent).collect(),
            vectors,
            mean,
            thresholds,
        })
    }

    /// The intents ranked by the mean similarity of their nearest examples to `message`.
    pub fn ranked(&self, message: &[f32]) -> Vec<(Intent, f32)> {
        if message.len() != self.mean.len() {
            // Another model's vector: unrelated to every example.
            return Vec::new();
        }
        let message = centred(message, &self.mean);
        let message = message.as_slice();
        let mut by_intent: Vec<(Intent, Vec<f32>)> = Vec::new();
        for (intent, vector) in self.intents.iter().zip(&self.vectors) {
            let similarity = dot(vector, message);
            match by_intent.iter_mut().find(|(seen, _)| seen == intent) {
                Some((_, similarities)) => similarities.push(similarity),
                None => by_intent.push((*intent, vec![similarity])),
            }
        }
        let mut ranked: Vec<(Intent, f32)> = by_intent
            .into_iter()
            .map(|(intent, mut similarities)| {
                similarities.sort_by(|a, b| b.total_cmp(a));
                let nearest = &similarities[..similarities.len().min(NEAREST_PER_INTENT)];
                #[allow(clippy::cast_precision_loss)]
                let mean = nearest.iter().sum::<f32>() / nearest.len() as f32;
                (intent, mean)
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }

    /// The nearest intent with its similarity and its margin over the next one.
    pub fn nearest(&self, message: &[f32]) -> Option<Nearest> {
        let ranked = self.ranked(message);
        let (intent, similarity) = *ranked.first()?;
        let margin = ranked.get(1).map_or(similarity, |next| similarity - next.1);
        Some(Nearest {
            intent,
            similarity,
            margin,
        })
    }

    /// The intent `message` expresses, when its examples are near enough and clearly nearest;
    /// `None` for a message that is none of them (or nearest to `other`).
    pub fn recognise(&self, message: &[f32]) -> Option<Intent> {
        let thresholds = self.thresholds;
        self.recognise_with(message, thresholds.min_similarity, thresholds.min_margin)
    }

    /// The intent a clause of a longer message expresses, held to the stricter clause pair;
    /// small talk never (the rest of the message may ask something).
    pub fn recognise_clause(&self, clause: &[f32]) -> Option<Intent> {
        let thresholds = self.thresholds;
        self.recognise_with(
            clause,
            thresholds.clause_min_similarity,
            thresholds.clause_min_margin,
        )
        .filter(|intent| !matches!(intent, Intent::Smalltalk(_)))
    }

    fn recognise_with(
        &self,
        vector: &[f32],
        min_similarity: f32,
        min_margin: f32,
    ) -> Option<Intent> {
        let nearest = self.nearest(vector)?;
        (nearest.intent != Intent::Other
            && nearest.similarity >= min_similarity
            && nearest.margin >= min_margin)
            .then_some(nearest.intent)
    }
}

/// `vector` minus `mean`, scaled to unit length (a zero vector stays zero).
fn centred(vector: &[f32], mean: &[f32]) -> Vec<f32> {
    let mut centred: Vec<f32> = vector.iter().zip(mean).map(|(x, m)| x - m).collect();
    let norm = centred.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > f32::EPSILON {
        for value in &mut centred {
            *value /= norm;
        }
    }
    centred
}

/// The dot product: the cosine similarity of unit vectors. Vectors of different lengths (of
/// another model) are unrelated.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(intent: Intent) -> Example {
        Example {
            intent,
            lang: Lang::Ru,
            text: String::new(),
        }
    }

    fn unit(x: f32, y: f32) -> Vec<f32> {
        let norm = (x * x + y * y).sqrt();
        vec![x / norm, y / norm]
    }

    #[test]
    fn the_nearest_intent_wins_only_when_near_and_clearly_nearest() {
        let examples = [
            example(Intent::Objection(ObjectionKind::Price)),
            example(Intent::Objection(ObjectionKind::Price)),
            example(Intent::Other),
        ];
        let vectors = vec![unit(1.0, 0.0), unit(0.95, 0.05), unit(0.0, 1.0)];
        let thresholds = Thresholds {
            min_similarity: 0.9,
            min_margin: 0.05,
            clause_min_similarity: 0.95,
            clause_min_margin: 0.1,
        };
        let index = ExampleIndex::new(&examples, vectors, thresholds).expect("index");
        assert_eq!(
            index.recognise(&unit(1.0, 0.02)),
            Some(Intent::Objection(ObjectionKind::Price))
        );
        // Nearest to `other`: nothing recognised.
        assert_eq!(index.recognise(&unit(0.0, 1.0)), None);
        // Halfway: neither near enough nor clearly nearer.
        assert_eq!(index.recognise(&unit(1.0, 1.0)), None);
        // Another model's vector is unrelated to every example.
        assert_eq!(index.recognise(&[1.0, 0.0, 0.0]), None);
    }

    #[test]
    fn a_message_divides_into_clauses_at_sentences_and_contrasts() {
        assert_eq!(
            clauses("I like what I see but our controller makes all the calls"),
            vec!["I like what I see", "our controller makes all the calls"]
        );
        assert_eq!(
            clauses("Нам подходит. Только решает директор, он в отпуске"),
            vec!["Только решает директор, он в отпуске"]
        );
        assert!(clauses("сколько стоит базовый тариф?").is_empty());
        assert!(clauses("").is_empty());
    }

    #[test]
    fn every_key_parses_back() {
        for key in Intent::known_keys().split(", ") {
            assert_eq!(Intent::parse(key).map(Intent::as_str), Some(key));
        }
        assert_eq!(Intent::parse("prices"), None);
        assert!(ExampleIndex::new(&[], Vec::new(), Thresholds::default()).is_none());
    }
}
