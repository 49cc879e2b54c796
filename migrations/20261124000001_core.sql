-- The core schema: conversations and their messages, leads with their hand-off outbox,
-- ratings, analytics events and the knowledge base's documents.
-- Only the closer-store crate reads or writes these tables.

-- One row per chat on one channel. `state` is the dialog's state, opaque to the store;
-- it is NULL until the first turn of the conversation commits.
CREATE TABLE conversations (
    id              uuid PRIMARY KEY,
    channel         text NOT NULL,
    chat_id         text NOT NULL,
    lang            text,
    stage           text,
    state           jsonb,
    source_campaign text,
    -- A person took the conversation over: the assistant stays silent.
    taken_over_by   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, chat_id)
);

-- Every message in and out. An inbound row carries the platform's message id, and the
-- outbound rows that answered it point back at it through `reply_to`, so that a
-- redelivered message is answered from here instead of being processed again.
CREATE TABLE messages (
    id                  bigserial PRIMARY KEY,
    conversation_id     uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    direction           text NOT NULL CHECK (direction IN ('in', 'out')),
    channel             text NOT NULL,
    platform_message_id text,
    -- The reply kind for an outbound message; the content type for an inbound one.
    kind                text NOT NULL,
    text                text NOT NULL,
    payload             jsonb NOT NULL DEFAULT '{}'::jsonb,
    reply_to            bigint REFERENCES messages (id) ON DELETE CASCADE,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((direction = 'in') = (platform_message_id IS NOT NULL)),
    CHECK (direction = 'out' OR reply_to IS NULL)
);
-- Dedupe per conversation (channel + chat): platforms such as Telegram number messages per
-- chat, so the same id in two chats is two different messages.
CREATE UNIQUE INDEX messages_inbound_dedupe
    ON messages (conversation_id, platform_message_id);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX messages_by_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;

-- At most one lead per conversation.
CREATE TABLE leads (
    id              uuid PRIMARY KEY,
    conversation_id uuid NOT NULL UNIQUE REFERENCES conversations (id) ON DELETE CASCADE,
    channel         text NOT NULL,
    name            text,
    phone           text,
    email           text,
    company         text,
    summary         text NOT NULL,
    qualification   jsonb NOT NULL DEFAULT '{}'::jsonb,
    objections      text[] NOT NULL DEFAULT '{}',
    qualified       boolean NOT NULL DEFAULT false,
    source_campaign text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leads_by_created_at ON leads (created_at DESC);

-- A transactional outbox: written in the same transaction as the lead, delivered later by a
-- worker, at least once, with the idempotency key sent to the tracker.
CREATE TABLE handoff_outbox (
    id              bigserial PRIMARY KEY,
    lead_id         uuid NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    target          text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_flight', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    external_id     text,
    external_url    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX handoff_outbox_due ON handoff_outbox (status, next_attempt_at);
CREATE INDEX handoff_outbox_by_lead ON handoff_outbox (lead_id);

-- One rating per conversation; rating again replaces it.
CREATE TABLE ratings (
    conversation_id uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    score           smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Analytics events, e.g. a hand-off request or an objection met.
CREATE TABLE events (
    id              bigserial PRIMARY KEY,
    conversation_id uuid REFERENCES conversations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_by_name ON events (name, created_at);
CREATE INDEX events_by_conversation ON events (conversation_id) WHERE conversation_id IS NOT NULL;

-- The knowledge base as imported: the raw text is kept so the index can be rebuilt.
CREATE TABLE kb_documents (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL UNIQUE,
    title        text NOT NULL,
    lang         text,
    audience     text NOT NULL,
    tags         text[] NOT NULL DEFAULT '{}',
    format       text NOT NULL,
    content      text NOT NULL,
    content_hash text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
