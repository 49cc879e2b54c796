//! `stream-chat`'s event stream, read as bytes arrive: `data: {json}` lines (no `event:`, no
//! `id:`, no `[DONE]`), two events with `close:true`, sources only in `finalizeResponseStream`,
//! a refusal as one `textResponse` event then EOF, `abort` in the middle, `<think>` inline.
//!
//! The parsing is a pure state machine ([`StreamParser`]) fed with byte chunks, so every
//! shape of the contract is tested without a server; [`super::ChatStream`] feeds it from the
//! HTTP response.

use super::wire::{ChatResponse, WireSource};
use super::{classify_answer, AnythingLlmError, ChatOutcome};

/// What the stream has produced so far.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// More of the answer's text, `<think>` sections removed.
    Text(String),
    /// The stream has ended with this outcome.
    Done(ChatOutcome),
}

/// Reads `stream-chat` bytes into [`StreamEvent`]s.
#[derive(Debug, Default)]
pub struct StreamParser {
    /// Bytes of a line not yet ended.
    pending: Vec<u8>,
    /// The answer's whole text as streamed (thinking included; stripped at the end).
    text: String,
    think: ThinkFilter,
    /// A `textResponse` event: a refusal (then EOF), or an agent's whole answer (then finalize).
    whole: Option<ChatResponse>,
    /// Sources repeated in every chunk by servers before v1.9.0.
    chunk_sources: Vec<WireSource>,
    done: bool,
}

impl StreamParser {
    /// Feeds a chunk of bytes; returns the events it completes.
    ///
    /// # Errors
    /// [`AnythingLlmError::Aborted`] for an `abort` event.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<StreamEvent>, AnythingLlmError> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if self.done {
                continue;
            }
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data.is_empty() {
                continue;
            }
            let event: ChatResponse = serde_json::from_str(data)
                .map_err(|error| AnythingLlmError::Malformed(format!("a stream event: {error}")))?;
            self.event(event, &mut events)?;
        }
        Ok(events)
    }

    fn event(
        &mut self,
        event: ChatResponse,
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), AnythingLlmError> {
        match event.kind.as_deref() {
            Some("abort") => {
                self.done = true;
                Err(AnythingLlmError::Aborted(
                    event
                        .error_message()
                        .unwrap_or_else(|| "the stream was aborted".to_owned()),
                ))
            }
            Some("textResponseChunk") => {
                if let Some(sources) = event.sources.filter(|sources| !sources.is_empty()) {
                    self.chunk_sources = sources;
                }
                let chunk = event.text_response.unwrap_or_default();
                self.text.push_str(&chunk);
                let visible = self.think.push(&chunk);
                if !visible.is_empty() {
                    events.push(StreamEvent::Text(visible));
                }
                Ok(())
            }
            Some("textResponse") => {
                self.whole = Some(event);
                Ok(())
            }
            Some("finalizeResponseStream") => {
                self.done = true;
                // The end of the text held back as the possible start of a tag ("costs <")
                // is text after all: no more comes.
                let rest = self.think.flush();
                if !rest.is_empty() {
                    events.push(StreamEvent::Text(rest));
                }
                let text = match event.text_response.as_deref() {
                    Some(whole) if !whole.is_empty() => whole.to_owned(),
                    _ => match &self.whole {
                        Some(whole) if self.text.is_empty() => {
                            whole.text_response.clone().unwrap_or_default()
                        }
                        _ => self.text.clone(),
                    },
                };
                let final_event = ChatResponse {
                    text_response: Some(text),
                    sources: event.sources,
                    ..event
                };
                events.push(StreamEvent::Done(classify_answer(final_event)));
                Ok(())
            }
            // agentThought, fileDownload, usageMetrics, statusResponse: not the answer.
            _ => Ok(()),
        }
    }

    /// The stream's connection ended; returns its outcome.
    ///
    /// # Errors
    /// [`AnythingLlmError::Malformed`] when it ended before the answer did.
    pub fn finish(&mut self) -> Result<Option<StreamEvent>, AnythingLlmError> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        if let Some(whole) = self.whole.take() {
            // The one-event refusal (or a reset, or a failed vector search), then EOF.
            return Ok(Some(StreamEvent::Done(classify_answer(whole))));
        }
        if !self.text.is_empty() {
            // Servers before v1.9.0 end after the closing chunk, sources repeated in chunks.
            let answer = ChatResponse {
                kind: Some("textResponse".to_owned()),
                text_response: Some(self.text.clone()),
                sources: Some(std::mem::take(&mut self.chunk_sources)),
                chat_id: Some(serde_json::Value::Null),
                ..ChatResponse::default()
            };
            let outcome = classify_answer(answer);
            // Without a chatId a sourced answer still counts; an unsourced one is a refusal.
            return Ok(Some(StreamEvent::Done(outcome)));
        }
        Err(AnythingLlmError::Malformed(
            "the stream ended before the answer".to_owned(),
        ))
    }
}

/// Removes `<think>…</think>` from text arriving in pieces, whose tags may be split anywhere.
#[derive(Debug, Default)]
struct ThinkFilter {
    inside: bool,
    /// The end of the text seen that may be the start of a tag.
    held: String,
}

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";

impl ThinkFilter {
    fn push(&mut self, chunk: &str) -> String {
        let mut text = std::mem::take(&mut self.held);
        text.push_str(chunk);
        let mut visible = String::new();
        loop {
            let tag = if self.inside { THINK_CLOSE } else { THINK_OPEN };
            if let Some(at) = text.find(tag) {
                if !self.inside {
                    visible.push_str(&text[..at]);
                }
                text = text[at + tag.len()..].to_owned();
                self.inside = !self.inside;
                continue;
            }
            // Hold back the longest end of `text` that starts the tag.
            let keep = (1..tag.len())
                .rev()
                .find(|length| {
                    text.len() >= *length
                        && text.is_char_boundary(text.len() - length)
                        && tag.starts_with(&text[text.len() - length..])
                })
                .unwrap_or(0);
            let cut = text.len() - keep;
            if !self.inside {
                visible.push_str(&text[..cut]);
            }
            self.held = text[cut..].to_owned();
            return visible;
        }
    }
}

impl ThinkFilter {
    /// The text held back as the possible start of a tag, once no more text comes: shown
    /// unless it is inside a thinking section.
    fn flush(&mut self) -> String {
        let held = std::mem::take(&mut self.held);
        if self.inside {
            String::new()
        } else {
            held
        }
    }
}

/// `text` without its `<think>…</think>` sections (an unclosed one runs to the end).
pub fn strip_think(text: &str) -> String {
    let mut filter = ThinkFilter::default();
    let mut visible = filter.push(text);
    visible.push_str(&filter.flush());
    visible.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(events: &[StreamEvent]) -> String {
        events
            .iter()
            .filter_map(|event| match event {
                StreamEvent::Text(text) => Some(text.as_str()),
                StreamEvent::Done(_) => None,
            })
            .collect()
    }

    #[test]
    fn think_sections_are_removed_even_when_split_across_chunks() {
        let mut filter = ThinkFilter::default();
        let pieces = [
            "Pro <thi",
            "nk>let me see</th",
            "ink>costs 10",
            " USD<",
            "think>x</think>.",
        ];
        let visible: String = pieces.iter().map(|piece| filter.push(piece)).collect();
        assert_eq!(visible, "Pro costs 10 USD.");
        assert_eq!(strip_think("<think>a</think>Answer"), "Answer");
        assert_eq!(strip_think("a < b"), "a < b");
        assert_eq!(strip_think("Answer <think>never closed"), "Answer");
    }

    #[test]
    fn a_stream_with_two_closes_ends_on_finalize_with_its_sources() {
        let mut parser = StreamParser::default();
        let body = concat!(
            "data: {\"uuid\":\"u1\",\"type\":\"textResponseChunk\",\"textResponse\":\"Pro \",\"sources\":[],\"close\":false,\"error\":false}\n\n",
            "data: {\"uuid\":\"u1\",\"type\":\"textResponseChunk\",\"textResponse\":\"costs 10.\",\"sources\":[],\"close\":false,\"error\":false}\n\n",
            "data: {\"uuid\":\"u1\",\"type\":\"textResponseChunk\",\"textResponse\":\"\",\"sources\":[],\"close\":true,\"error\":false}\n\n",
            "data: {\"uuid\":\"u1\",\"type\":\"finalizeResponseStream\",\"close\":true,\"error\":false,\"chatId\":42,\"metrics\":{},",
            "\"sources\":[{\"title\":\"pricing.txt\",\"text\":\"<document_metadata>\\nsourceDocument: pricing.txt\\n</document_metadata>\\n\\nPro plan\",\"score\":0.59}]}\n\n",
        );
        // Fed in awkward pieces: a line may arrive in several chunks.
        let mut events = Vec::new();
        for piece in body.as_bytes().chunks(7) {
            events.extend(parser.feed(piece).expect("a valid stream"));
        }
        assert_eq!(texts(&events), "Pro costs 10.");
        let Some(StreamEvent::Done(ChatOutcome::Answered(answer))) = events.last() else {
            panic!("the stream ends with an answer: {events:?}");
        };
        assert_eq!(answer.text, "Pro costs 10.");
        assert_eq!(answer.sources.len(), 1);
        assert_eq!(answer.sources[0].excerpt, "Pro plan");
        assert_eq!(parser.finish().expect("ended"), None);
    }

    #[test]
    fn text_held_back_as_a_possible_tag_is_shown_when_the_stream_ends() {
        // "a <" might have begun "<think>": held back, it was never shown once the stream
        // ended there.
        let mut parser = StreamParser::default();
        let events = parser
            .feed(b"data: {\"type\":\"textResponseChunk\",\"textResponse\":\"a <\"}\n\ndata: {\"type\":\"finalizeResponseStream\",\"chatId\":1}\n\n")
            .expect("a valid stream");
        assert_eq!(texts(&events), "a <");
    }

    #[test]
    fn a_refusal_is_one_event_then_eof() {
        let mut parser = StreamParser::default();
        let events = parser
            .feed(b"data: {\"id\":\"r1\",\"type\":\"textResponse\",\"textResponse\":\"There is no relevant information in this workspace to answer your query.\",\"sources\":[],\"close\":true,\"error\":null,\"metrics\":{}}\n\n")
            .expect("a valid event");
        assert!(events.is_empty());
        assert!(matches!(
            parser.finish(),
            Ok(Some(StreamEvent::Done(ChatOutcome::Refused { .. })))
        ));
    }

    #[test]
    fn an_abort_in_the_middle_is_an_error() {
        let mut parser = StreamParser::default();
        parser
            .feed(b"data: {\"uuid\":\"u1\",\"type\":\"textResponseChunk\",\"textResponse\":\"Pro\",\"close\":false,\"error\":false}\n\n")
            .expect("a chunk");
        let aborted = parser.feed(b"data: {\"uuid\":\"u1\",\"type\":\"abort\",\"textResponse\":null,\"sources\":[],\"close\":true,\"error\":\"LLM went away\"}\n\n");
        assert!(
            matches!(aborted, Err(AnythingLlmError::Aborted(message)) if message == "LLM went away")
        );
    }

    #[test]
    fn a_stream_cut_before_any_answer_is_an_error() {
        let mut parser = StreamParser::default();
        parser
            .feed(b"data: {\"uuid\":\"u1\",\"type\":\"agentThought\",\"thought\":\"hm\"}\n")
            .expect("an event");
        assert!(matches!(
            parser.finish(),
            Err(AnythingLlmError::Malformed(_))
        ));
    }

    mod properties {
        use closer_testing::{cases, nasty_text_with};
        use proptest::prelude::*;
        use serde_json::json;

        use super::*;

        const THINK_PIECES: &[&str] = &["<think>", "</think>", "<", "</", "<thi", "nk>", ">"];

        /// `bytes` fed to a new parser in pieces cut at `cuts` (anywhere, inside a character
        /// too); the events, or the first error.
        fn feed_in_pieces(
            bytes: &[u8],
            cuts: &[usize],
        ) -> Result<Vec<StreamEvent>, AnythingLlmError> {
            let mut parser = StreamParser::default();
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut events = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                events.extend(parser.feed(&bytes[start..cut])?);
                start = cut;
            }
            events.extend(parser.finish()?);
            Ok(events)
        }

        /// A `stream-chat` body streaming `chunks`, closed like servers since v1.9.0 do.
        fn stream_of(chunks: &[String]) -> Vec<u8> {
            let mut body = String::new();
            for chunk in chunks {
                let event = json!({"uuid": "u1", "type": "textResponseChunk",
                    "textResponse": chunk, "sources": [], "close": false, "error": false});
                body.push_str(&format!("data: {event}\n\n"));
            }
            body.push_str("data: {\"uuid\":\"u1\",\"type\":\"finalizeResponseStream\",\"close\":true,\"error\":false,\"chatId\":7,\"sources\":[{\"title\":\"a.md\",\"text\":\"x\"}]}\n\n");
            body.into_bytes()
        }

        proptest! {
            #![proptest_config(cases(128))]

            /// Bytes of any kind, in pieces of any size, end in events or an error, never a
            /// panic.
            #[test]
            fn any_bytes_in_any_pieces_are_read_without_panicking(
                text in nasty_text_with(&["data:", "data: {", "\n", "\"type\":\"textResponseChunk\"", "\"textResponse\":\"", "}", "\"close\":true"]),
                bytes in proptest::collection::vec(any::<u8>(), 0..300),
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                let _ = feed_in_pieces(text.as_bytes(), &cuts);
                let _ = feed_in_pieces(&bytes, &cuts);
            }

            /// However the bytes are cut, the text shown as it streams is the answer's text
            /// without its thinking, and the final answer is that text trimmed.
            #[test]
            fn the_streamed_text_does_not_depend_on_how_the_bytes_arrive(
                chunks in proptest::collection::vec(nasty_text_with(THINK_PIECES), 1..6),
                cuts in proptest::collection::vec(any::<usize>(), 0..12),
            ) {
                let body = stream_of(&chunks);
                let whole = feed_in_pieces(&body, &[]).expect("a valid stream");
                let cut = feed_in_pieces(&body, &cuts).expect("a valid stream");
                let shown = |events: &[StreamEvent]| -> String {
                    events
                        .iter()
                        .filter_map(|event| match event {
                            StreamEvent::Text(text) => Some(text.as_str()),
                            StreamEvent::Done(_) => None,
                        })
                        .collect()
                };
                prop_assert_eq!(shown(&cut), shown(&whole));
                prop_assert_eq!(cut.last(), whole.last());
                let expected = strip_think(&chunks.concat());
                let answered = match whole.last() {
                    Some(StreamEvent::Done(ChatOutcome::Answered(answer))) => answer.text.clone(),
                    Some(StreamEvent::Done(ChatOutcome::Unsourced { text })) => text.clone(),
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                };
                prop_assert_eq!(answered, expected.clone());
                let streamed = shown(&whole);
                prop_assert_eq!(streamed.trim(), expected.as_str());
                if !chunks.concat().contains('<') {
                    prop_assert_eq!(shown(&whole), chunks.concat());
                }
            }

            /// The thinking filter gives the same text however its input is cut.
            #[test]
            fn thinking_is_removed_however_the_text_is_cut(
                text in nasty_text_with(THINK_PIECES),
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                let mut filter = ThinkFilter::default();
                let mut boundaries: Vec<usize> = cuts
                    .iter()
                    .map(|cut| cut % (text.len() + 1))
                    .filter(|cut| text.is_char_boundary(*cut))
                    .collect();
                boundaries.sort_unstable();
                let mut shown = String::new();
                let mut start = 0;
                for cut in boundaries.into_iter().chain([text.len()]) {
                    shown.push_str(&filter.push(&text[start..cut]));
                    start = cut;
                }
                shown.push_str(&filter.flush());
                prop_assert_eq!(shown.trim(), strip_think(&text));
            }

            /// A source's excerpt loses its metadata header whatever surrounds it.
            #[test]
            fn document_metadata_is_stripped_without_panicking(
                text in nasty_text_with(&["<document_metadata>", "</document_metadata>", "\n"]),
            ) {
                let stripped = crate::anythingllm::strip_document_metadata(&text);
                prop_assert_eq!(stripped.trim(), stripped.as_str());
            }
        }
    }
}
