-- Container sandbox records (internal/sandbox). Times are Unix nanoseconds (UTC);
-- 0 means unset. Only the SHA-256 of a sandbox's door token is kept.
CREATE TABLE sandboxes (
	id           TEXT PRIMARY KEY,
	task         TEXT NOT NULL,
	image        TEXT NOT NULL,
	policy       TEXT NOT NULL,
	status       TEXT NOT NULL,
	docker_id    TEXT NOT NULL DEFAULT '',
	exit_code    INTEGER,
	oom_killed   INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	deadline     INTEGER NOT NULL DEFAULT 0,
	finished_at  INTEGER NOT NULL DEFAULT 0,
	expires_at   INTEGER NOT NULL DEFAULT 0,
	token_hash   BLOB,
	stdout       BLOB,
	stderr       BLOB,
	truncated    INTEGER NOT NULL DEFAULT 0,
	allowlist    TEXT,           -- JSON array, NULL when the spawn did not narrow
	credentials  TEXT NOT NULL DEFAULT '[]', -- JSON array of granted names
	log_limit    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sandboxes_status ON sandboxes(status);
CREATE INDEX sandboxes_created ON sandboxes(created_at DESC, id DESC);
CREATE INDEX sandboxes_expires ON sandboxes(expires_at) WHERE expires_at > 0;
