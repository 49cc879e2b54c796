-- How far each taken-over conversation has been mirrored into its lead's Slack thread: the
-- last message (by id) already posted there. The mirror resumes from here after a restart or
-- a lagged wake-up, so every message is mirrored once and in order.
CREATE TABLE slack_mirrors (
    conversation_id uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    channel         text NOT NULL,
    thread_ts       text NOT NULL,
    last_message_id bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
