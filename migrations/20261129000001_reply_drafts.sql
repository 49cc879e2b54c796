-- Streamed answers. While the answer source (AnythingLLM) writes an answer, the prospect sees it
-- grow in one message that the channel edits (the draft); the reply committed at the end of the
-- turn then replaces the draft by one more edit instead of arriving as a message of its own.
--
-- A draft is recorded as soon as the platform has given it an id, keyed by the inbound message
-- it answers, so a redelivery of that message (after a crash before the commit) edits the same
-- draft instead of showing a second one. The turn's commit removes the row: from then on the
-- reply row carries the draft's id.
CREATE TABLE reply_drafts (
    channel             text NOT NULL,
    chat_id             text NOT NULL,
    inbound_platform_id text NOT NULL,
    platform_message_id text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, chat_id, inbound_platform_id)
);

-- The platform's id of the draft message a reply replaces by an edit, and when that draft was
-- first shown (the prospect's first sight of the answer, which the reply-time figures count);
-- NULL for a new message.
ALTER TABLE messages
    ADD COLUMN replaces_platform_id text,
    ADD COLUMN first_shown_at       timestamptz;
