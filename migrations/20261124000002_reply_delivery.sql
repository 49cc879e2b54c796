-- Replies on channels with a background sender (Telegram, Slack, Discord) form an outbox of
-- their own: a reply is committed `pending` in the same transaction as the message it answers,
-- and the channel's sender marks it `sent` (with the platform's id of what it sent) or
-- `failed` (with the reason: the bot was blocked, the chat is gone). NULL on inbound messages
-- and on channels that show replies at once (the terminal, eval).
ALTER TABLE messages
    ADD COLUMN delivery          text CHECK (delivery IN ('pending', 'sent', 'failed')),
    ADD COLUMN delivery_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN delivery_error    text,
    ADD COLUMN delivered_at      timestamptz,
    ADD COLUMN platform_reply_ids text[],
    ADD CONSTRAINT messages_delivery_outbound CHECK (direction = 'out' OR delivery IS NULL);

-- The senders' queue: pending replies per conversation, oldest first.
CREATE INDEX messages_pending_delivery
    ON messages (channel, conversation_id, id) WHERE delivery = 'pending';
