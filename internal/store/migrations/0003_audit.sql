-- The audit index: every record written to audit.jsonl, for GET /audit. The file is
-- the log of record; this table is a queryable copy, pruned by age (DeleteAuditBefore).
-- time is Unix nanoseconds (UTC), so that ordering and ranges are plain integer
-- comparisons; record holds the whole record as JSON.
CREATE TABLE audit (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	time         INTEGER NOT NULL,
	kind         TEXT NOT NULL,
	container_id TEXT NOT NULL DEFAULT '',
	tool         TEXT NOT NULL DEFAULT '',
	decision     TEXT NOT NULL DEFAULT '',
	record       TEXT NOT NULL
);
CREATE INDEX audit_time ON audit(time, id);
CREATE INDEX audit_kind ON audit(kind, time, id);
CREATE INDEX audit_container ON audit(container_id, time, id);
CREATE INDEX audit_tool ON audit(tool, time, id);
CREATE INDEX audit_decision ON audit(decision, time, id);
