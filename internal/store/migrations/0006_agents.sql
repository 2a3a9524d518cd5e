-- Agents (issue 19): named long-lived sandboxes. A sandbox may mount a kept
-- workspace of another id (an agent's) and may be paused (its deadline clock
-- stopped at paused_at, Unix nanoseconds, 0 when not paused).
ALTER TABLE sandboxes ADD COLUMN workspace TEXT NOT NULL DEFAULT '';
ALTER TABLE sandboxes ADD COLUMN paused_at INTEGER NOT NULL DEFAULT 0;

-- One row per agent: its id, when it was created (the list order) and its
-- state as JSON (config, status, current sandbox, restarts, workspace id).
CREATE TABLE agents (
	id         TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL,
	state      TEXT NOT NULL
);
