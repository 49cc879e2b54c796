-- The web console: the sales team's accounts, their browser sessions and their API tokens.
-- Passwords are argon2 hashes; session and API tokens are stored as SHA-256 hashes only, so a
-- copy of the database signs nobody in.
CREATE TABLE console_accounts (
    id            uuid PRIMARY KEY,
    -- Lower-cased, so that sign-in does not depend on how the address was typed.
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE console_sessions (
    token_hash text PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES console_accounts (id) ON DELETE CASCADE,
    -- Every form and state-changing API call of the session carries this token back.
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

CREATE TABLE console_api_tokens (
    id           uuid PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES console_accounts (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

-- The dashboard and the conversation list read conversations by period, newest first.
CREATE INDEX conversations_by_created_at ON conversations (created_at DESC);
CREATE INDEX conversations_by_last_message_at ON conversations (last_message_at DESC);
