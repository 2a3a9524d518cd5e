package store

import (
	"context"
	"fmt"
	"time"

	"github.com/clawbox/clawbox/internal/audit"
)

var _ audit.Pruner = (*DB)(nil)

// PruneAudit applies the audit index's retention: it deletes the records older than
// before (unless before is zero), then, while the records' JSON takes more than
// maxBytes (when maxBytes > 0), the oldest refusals (egress requests not allowed)
// and, once none is left, the oldest records of any kind. Refusals go first so that
// a sandbox flooding refused requests cannot push allowed requests and lifecycle
// events out of the index. It deletes in chunks and returns how many it deleted.
func (db *DB) PruneAudit(ctx context.Context, before time.Time, maxBytes int64) (int64, error) {
	var total int64
	if !before.IsZero() {
		n, err := db.DeleteAuditBefore(ctx, before)
		total += n
		if err != nil {
			return total, err
		}
	}
	if maxBytes <= 0 {
		return total, nil
	}
	for _, where := range []string{
		"kind = 'request' AND decision NOT IN ('', 'allowed')",
		"1 = 1",
	} {
		for {
			var size int64
			if err := db.sql.QueryRowContext(ctx, `SELECT COALESCE(SUM(LENGTH(record)), 0) FROM audit`).Scan(&size); err != nil {
				return total, fmt.Errorf("audit retention: %w", err)
			}
			if size <= maxBytes {
				return total, nil
			}
			// Delete about the excess, in records of the average size, at least one.
			n, err := db.deleteOldest(ctx, where, size-maxBytes)
			total += n
			if err != nil {
				return total, err
			}
			if n == 0 {
				break // nothing of this class left: try the next
			}
		}
	}
	return total, nil
}

// deleteOldest deletes the oldest records matching where whose sizes add up to at
// least excess bytes, at most auditDeleteChunk of them, and returns how many.
func (db *DB) deleteOldest(ctx context.Context, where string, excess int64) (int64, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, LENGTH(record) FROM audit WHERE `+where+` ORDER BY time, id LIMIT ?`, auditDeleteChunk)
	if err != nil {
		return 0, fmt.Errorf("audit retention: %w", err)
	}
	var k, sum int64
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return 0, fmt.Errorf("audit retention: %w", err)
		}
		k, sum = k+1, sum+n
		if sum >= excess {
			break
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("audit retention: %w", err)
	}
	if k == 0 {
		return 0, nil
	}
	// The writer that calls this is the only one inserting: the k oldest rows are
	// still the ones just read.
	res, err := db.sql.ExecContext(ctx, `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE `+where+` ORDER BY time, id LIMIT ?)`, k)
	if err != nil {
		return 0, fmt.Errorf("audit retention: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("audit retention: %w", err)
	}
	return n, nil
}
