-- Tool manifests registered through POST /tools/register, by tool name.
CREATE TABLE tool_manifests (
	name          TEXT PRIMARY KEY,
	manifest      TEXT NOT NULL,
	registered_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
	updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
