-- How far into the audit files the index has got (audit.Position): the file, by the
-- hash of its first line, and the byte offset after the last indexed line. It is
-- updated in the transaction of every batch (InsertAuditLines), so that on start the
-- writer indexes exactly the lines written after it, a crash between the file and
-- the index included. One row at most.
CREATE TABLE audit_position (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	file        TEXT NOT NULL,
	byte_offset INTEGER NOT NULL
);
-- An index kept before positions were recorded holds an unknown part of the files:
-- byte_offset -1 tells the writer to take the files as indexed, not to index them
-- a second time.
INSERT INTO audit_position(id, file, byte_offset) SELECT 1, '', -1 WHERE EXISTS (SELECT 1 FROM audit);
