-- Web UI sessions (issue 20). A row per signed-in browser: the SHA-256 of the session cookie's
-- value (the cookie itself is never stored), the user, the session's CSRF token (every form of
-- the UI carries it; a post whose token differs is refused), and when the session was made and
-- ends. Sign-out deletes the row; a disabled or deleted user's sessions stop resolving at once
-- (the account is read on every request) and are swept with expired ones.
CREATE TABLE ui_session (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX ui_session_user ON ui_session (user_id);
CREATE INDEX ui_session_expires ON ui_session (expires_ms);
