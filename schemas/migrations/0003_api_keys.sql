-- API keys (issue 4): only a SHA-256 of the secret is kept; the prefix identifies the key in
-- logs and listings without revealing it.
CREATE TABLE api_keys (
    key_id        text PRIMARY KEY,                  -- the public prefix, e.g. 'k3f9a0c1d'
    name          text NOT NULL,
    secret_sha256 bytea NOT NULL,
    scopes        text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'ingest', 'admin']::text[]),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
