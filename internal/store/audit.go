package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
)

var (
	_ audit.Index     = (*DB)(nil)
	_ audit.LineIndex = (*DB)(nil)
)

// InsertAudit stores the records in the audit index, in order, in one transaction.
func (db *DB) InsertAudit(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	defer tx.Rollback() // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit(time, kind, container_id, tool, decision, record) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	defer stmt.Close()
	for _, r := range recs {
		if r.Time.IsZero() {
			return errors.New("audit index: record without a time")
		}
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("audit index: %w", err)
		}
		if _, err := stmt.ExecContext(ctx, r.Time.UnixNano(), string(r.Kind), r.ContainerID, r.Tool, string(r.Decision), string(b)); err != nil {
			return fmt.Errorf("audit index: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	return nil
}

// InsertAuditLines stores the entries in the audit index, in order, their lines as
// they are, and records pos as the index's position in the audit files, in one
// transaction.
func (db *DB) InsertAuditLines(ctx context.Context, entries []audit.Entry, pos audit.Position) error {
	if pos.Offset < 0 {
		return fmt.Errorf("audit index: negative position %d", pos.Offset)
	}
	for _, e := range entries {
		if e.Record.Time.IsZero() {
			return errors.New("audit index: record without a time")
		}
		if len(e.Line) == 0 {
			return errors.New("audit index: record without its line")
		}
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	defer tx.Rollback() // a no-op after Commit
	if err := db.insertAuditRows(ctx, tx, entries); err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	setPos, err := db.stmt(ctx, tx, `INSERT INTO audit_position(id, file, byte_offset) VALUES (1, ?, ?)
		ON CONFLICT(id) DO UPDATE SET file = excluded.file, byte_offset = excluded.byte_offset`)
	if err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	defer setPos.Close()
	if _, err := setPos.ExecContext(ctx, pos.File, pos.Offset); err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit index: %w", err)
	}
	return nil
}

// auditRowsPerInsert is how many rows one INSERT statement of a batch carries.
const auditRowsPerInsert = 32

// The audit index's inserts: of one row, and of auditRowsPerInsert rows.
var (
	auditInsertOne  = "INSERT INTO audit(time, kind, container_id, tool, decision, record) VALUES (?, ?, ?, ?, ?, ?)"
	auditInsertMany = auditInsertOne + strings.Repeat(", (?, ?, ?, ?, ?, ?)", auditRowsPerInsert-1)
)

// insertAuditRows inserts the entries' rows in tx, auditRowsPerInsert to a statement
// and the rest one by one.
func (db *DB) insertAuditRows(ctx context.Context, tx *sql.Tx, entries []audit.Entry) error {
	args := make([]any, 0, 6*min(len(entries), auditRowsPerInsert))
	for len(entries) > 0 {
		n, query := auditRowsPerInsert, auditInsertMany
		if len(entries) < n {
			n, query = 1, auditInsertOne
		}
		st, err := db.stmt(ctx, tx, query)
		if err != nil {
			return err
		}
		args = args[:0]
		for _, e := range entries[:n] {
			r := e.Record
			args = append(args, r.Time.UnixNano(), string(r.Kind), r.ContainerID, r.Tool, string(r.Decision), string(e.Line))
		}
		_, err = st.ExecContext(ctx, args...)
		st.Close()
		if err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

// AuditPosition returns the index's position in the audit files, recorded by the
// last InsertAuditLines; the zero Position when none was.
func (db *DB) AuditPosition(ctx context.Context) (audit.Position, error) {
	var p audit.Position
	err := db.sql.QueryRowContext(ctx, `SELECT file, byte_offset FROM audit_position WHERE id = 1`).Scan(&p.File, &p.Offset)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Position{}, nil
	}
	if err != nil {
		return audit.Position{}, fmt.Errorf("audit index: %w", err)
	}
	return p, nil
}

// QueryAudit returns the indexed records matching f, newest first (by time, then by
// insertion order), at most f.EffectiveLimit() of them. The filter follows
// audit.Filter.Match: gap records match unless Kind or Since exclude them.
func (db *DB) QueryAudit(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if f.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, string(f.Kind))
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, f.Since.UnixNano())
	}
	var fields []string
	if f.ContainerID != "" {
		fields = append(fields, "container_id = ?")
		args = append(args, f.ContainerID)
	}
	if f.Tool != "" {
		fields = append(fields, "tool = ?")
		args = append(args, f.Tool)
	}
	if f.Decision != "" {
		fields = append(fields, "decision = ?")
		args = append(args, string(f.Decision))
	}
	if len(fields) > 0 {
		where = append(where, "(kind = 'gap' OR ("+strings.Join(fields, " AND ")+"))")
	}
	q := "SELECT record FROM audit"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY time DESC, id DESC LIMIT ?"
	args = append(args, f.EffectiveLimit())

	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	defer rows.Close()
	out := []audit.Record{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("audit query: %w", err)
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("audit query: decode record: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	return out, nil
}

// auditDeleteChunk bounds the rows one retention statement deletes, so that pruning
// a large index never holds the write lock for long.
const auditDeleteChunk = 5000

// DeleteAuditBefore deletes the indexed records older than t (the audit files are not
// touched) and returns how many it deleted.
func (db *DB) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	return db.deleteAuditBefore(ctx, t, auditDeleteChunk)
}

func (db *DB) deleteAuditBefore(ctx context.Context, t time.Time, chunk int64) (int64, error) {
	var total int64
	for {
		res, err := db.sql.ExecContext(ctx, `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE time < ? ORDER BY time LIMIT ?)`, t.UnixNano(), chunk)
		if err != nil {
			return total, fmt.Errorf("audit retention: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("audit retention: %w", err)
		}
		total += n
		if n < chunk {
			return total, nil
		}
	}
}
