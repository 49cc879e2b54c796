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

/// `text` without its `<think>…</think>` sections (an unclosed one runs to the end).
pub fn strip_think(text: &str) -> String {
    let mut filter = ThinkFilter::default();
    let mut visible = filter.push(text);
    if !filter.inside {
        visible.push_str(&filter.held);
    }
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
}
