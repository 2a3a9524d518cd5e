package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/internal/sandbox"
)

var _ sandbox.RecordStore = (*DB)(nil)

const sandboxColumns = `id, task, image, policy, status, docker_id, exit_code, oom_killed,
	created_at, deadline, finished_at, expires_at, token_hash, stdout, stderr, truncated,
	allowlist, credentials, log_limit, labels, workspace, paused_at, warm`

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// sandboxArgs returns rec's column values in sandboxColumns order.
func sandboxArgs(rec *sandbox.Record) ([]any, error) {
	var allow any
	if rec.Allowlist != nil {
		b, err := json.Marshal(rec.Allowlist)
		if err != nil {
			return nil, err
		}
		allow = string(b)
	}
	creds := rec.Credentials
	if creds == nil {
		creds = []string{}
	}
	cb, err := json.Marshal(creds)
	if err != nil {
		return nil, err
	}
	labels := rec.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	lb, err := json.Marshal(labels)
	if err != nil {
		return nil, err
	}
	var exit any
	if rec.ExitCode != nil {
		exit = *rec.ExitCode
	}
	return []any{rec.ID, rec.Task, rec.Image, string(rec.Policy), string(rec.Status), rec.ContainerID,
		exit, rec.OOMKilled, nanos(rec.CreatedAt), nanos(rec.Deadline), nanos(rec.FinishedAt),
		nanos(rec.ExpiresAt), rec.TokenHash, rec.Logs.Stdout, rec.Logs.Stderr, rec.Logs.Truncated,
		allow, string(cb), rec.LogLimit, string(lb), rec.Workspace, nanos(rec.PausedAt), rec.Warm}, nil
}

type scanner interface{ Scan(...any) error }

func scanSandbox(s scanner) (*sandbox.Record, error) {
	var (
		rec               sandbox.Record
		policy, status    string
		exit              sql.NullInt64
		created, deadline int64
		finished, expires int64
		allow             sql.NullString
		creds, labels     string
		oom, truncated    bool
		paused            int64
	)
	if err := s.Scan(&rec.ID, &rec.Task, &rec.Image, &policy, &status, &rec.ContainerID, &exit, &oom,
		&created, &deadline, &finished, &expires, &rec.TokenHash, &rec.Logs.Stdout, &rec.Logs.Stderr,
		&truncated, &allow, &creds, &rec.LogLimit, &labels, &rec.Workspace, &paused, &rec.Warm); err != nil {
		return nil, err
	}
	rec.Policy, rec.Status = sandbox.Policy(policy), sandbox.Status(status)
	if exit.Valid {
		v := int(exit.Int64)
		rec.ExitCode = &v
	}
	rec.OOMKilled, rec.Logs.Truncated = oom, truncated
	rec.CreatedAt, rec.Deadline = fromNanos(created), fromNanos(deadline)
	rec.FinishedAt, rec.ExpiresAt = fromNanos(finished), fromNanos(expires)
	rec.PausedAt = fromNanos(paused)
	if allow.Valid {
		if err := json.Unmarshal([]byte(allow.String), &rec.Allowlist); err != nil {
			return nil, fmt.Errorf("sandbox %s allowlist: %w", rec.ID, err)
		}
		if rec.Allowlist == nil {
			rec.Allowlist = []string{}
		}
	}
	if err := json.Unmarshal([]byte(creds), &rec.Credentials); err != nil {
		return nil, fmt.Errorf("sandbox %s credentials: %w", rec.ID, err)
	}
	if len(rec.Credentials) == 0 {
		rec.Credentials = nil
	}
	if err := json.Unmarshal([]byte(labels), &rec.Labels); err != nil {
		return nil, fmt.Errorf("sandbox %s labels: %w", rec.ID, err)
	}
	if len(rec.Labels) == 0 {
		rec.Labels = nil
	}
	return &rec, nil
}

// CreateSandbox inserts rec if fewer than maxActive sandboxes are creating or
// running; the count and the insert are one statement, so parallel spawns cannot
// exceed the limit.
func (db *DB) CreateSandbox(ctx context.Context, rec *sandbox.Record, maxActive int) error {
	args, err := sandboxArgs(rec)
	if err != nil {
		return err
	}
	args = append(args, maxActive)
	res, err := db.sql.ExecContext(ctx, `INSERT INTO sandboxes(`+sandboxColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE (SELECT COUNT(*) FROM sandboxes WHERE status IN ('creating', 'running')) < ?`, args...)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", rec.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("sandbox %s: %w", rec.ID, errdefs.ErrResourceExhausted.WithMessage("too many active sandboxes"))
	}
	return nil
}

// UpdateSandbox writes rec if the stored status is still from.
func (db *DB) UpdateSandbox(ctx context.Context, rec *sandbox.Record, from sandbox.Status) error {
	args, err := sandboxArgs(rec)
	if err != nil {
		return err
	}
	args = append(args[1:], rec.ID, string(from))
	res, err := db.sql.ExecContext(ctx, `UPDATE sandboxes SET task = ?, image = ?, policy = ?,
		status = ?, docker_id = ?, exit_code = ?, oom_killed = ?, created_at = ?, deadline = ?,
		finished_at = ?, expires_at = ?, token_hash = ?, stdout = ?, stderr = ?, truncated = ?,
		allowlist = ?, credentials = ?, log_limit = ?, labels = ?, workspace = ?, paused_at = ?, warm = ?
		WHERE id = ? AND status = ?`, args...)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", rec.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		if _, gerr := db.GetSandbox(ctx, rec.ID); gerr != nil {
			return gerr
		}
		return fmt.Errorf("sandbox %s: %w", rec.ID, errdefs.ErrConflict.WithMessage("status is no longer "+string(from)))
	}
	return nil
}

// GetSandbox returns one record.
func (db *DB) GetSandbox(ctx context.Context, id string) (*sandbox.Record, error) {
	rec, err := scanSandbox(db.sql.QueryRowContext(ctx, `SELECT `+sandboxColumns+` FROM sandboxes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sandbox %s: %w", id, errdefs.ErrNotFound)
	}
	return rec, err
}

// ListSandboxes returns records newest first, ties broken by id (descending).
func (db *DB) ListSandboxes(ctx context.Context, status sandbox.Status) ([]*sandbox.Record, error) {
	q := `SELECT ` + sandboxColumns + ` FROM sandboxes`
	var args []any
	if status != "" {
		q += ` WHERE status = ?`
		args = append(args, string(status))
	}
	q += ` ORDER BY created_at DESC, id DESC`
	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*sandbox.Record
	for rows.Next() {
		rec, err := scanSandbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// DeleteSandbox removes one record; a missing one is not an error.
func (db *DB) DeleteSandbox(ctx context.Context, id string) error {
	_, err := db.sql.ExecContext(ctx, `DELETE FROM sandboxes WHERE id = ?`, id)
	return err
}

// CountSandboxes returns how many records are in each status.
func (db *DB) CountSandboxes(ctx context.Context) (map[sandbox.Status]int, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT status, COUNT(*) FROM sandboxes GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[sandbox.Status]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[sandbox.Status(s)] = n
	}
	return out, rows.Err()
}

// DeleteExpiredSandboxes removes final records whose expiry is not after now.
func (db *DB) DeleteExpiredSandboxes(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := db.sql.QueryContext(ctx, `DELETE FROM sandboxes
		WHERE expires_at > 0 AND expires_at <= ? AND status NOT IN ('creating', 'running')
		RETURNING id`, now.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
