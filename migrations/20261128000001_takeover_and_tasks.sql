-- A person writing to the prospect during a takeover, and tracker tasks created by hand.

-- A person's message to the prospect is an outbound message with an author, keyed like an
-- inbound one (`person:<key>`) so that a platform's retry of the person's message stores it
-- once. Inbound messages still always carry the platform's id.
ALTER TABLE messages DROP CONSTRAINT messages_check;
ALTER TABLE messages
    ADD COLUMN author text,
    ADD CONSTRAINT messages_inbound_has_id CHECK (direction = 'out' OR platform_message_id IS NOT NULL);

-- A task a person asked for (`/closer task` in Slack), handed to the trackers through the
-- same outbox as leads. `key` is the request's own idempotency key (a retried command finds
-- the task it created); `conversation_id` links it to a conversation when asked from one.
CREATE TABLE tasks (
    id              uuid PRIMARY KEY,
    key             text NOT NULL UNIQUE,
    title           text NOT NULL,
    requested_by    text NOT NULL,
    conversation_id uuid REFERENCES conversations (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- An outbox row hands off either a lead or a task.
ALTER TABLE handoff_outbox
    ALTER COLUMN lead_id DROP NOT NULL,
    ADD COLUMN task_id uuid REFERENCES tasks (id) ON DELETE CASCADE,
    ADD CONSTRAINT handoff_outbox_subject CHECK ((lead_id IS NULL) <> (task_id IS NULL));
CREATE INDEX handoff_outbox_by_task ON handoff_outbox (task_id) WHERE task_id IS NOT NULL;
