-- Dead letters: inbound updates and events that could not be processed (a panic while handling
-- one, or a failure other than the database being away that repeated), recorded with the reason
-- and the raw payload so the channel's queue moves on instead of retrying them forever.
-- A person sees them on the console's Health page and with `closer dead-letters`, and can ask
-- for one to be tried again (`retry_requested_at`): the running channel picks it up, and the
-- engine's dedupe by platform message id keeps a retry from answering twice.
CREATE TABLE dead_letters (
    id                 uuid PRIMARY KEY,
    channel            text NOT NULL,
    -- The platform's id of the update or event (Telegram's update_id, Discord's message or
    -- interaction id, Slack's event_id), so the same one dead-lettered again is one row.
    external_id        text NOT NULL,
    reason             text NOT NULL,
    payload            text NOT NULL,
    attempts           integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_failed_at     timestamptz NOT NULL DEFAULT now(),
    retry_requested_at timestamptz,
    resolved_at        timestamptz,
    UNIQUE (channel, external_id)
);
CREATE INDEX dead_letters_open ON dead_letters (channel, created_at) WHERE resolved_at IS NULL;
