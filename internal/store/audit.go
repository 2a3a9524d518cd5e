package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
)

var _ audit.Index = (*DB)(nil)

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
