package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// PutToolManifest stores the manifest JSON registered for a tool, replacing any
// earlier one, and reports whether the tool had none.
func (db *DB) PutToolManifest(ctx context.Context, name string, manifest json.RawMessage) (created bool, err error) {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tool_manifests WHERE name = ?`, name).Scan(&n); err != nil {
		return false, fmt.Errorf("tool manifest %q: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tool_manifests(name, manifest) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest,
			updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')`, name, string(manifest)); err != nil {
		return false, fmt.Errorf("tool manifest %q: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("tool manifest %q: %w", name, err)
	}
	return n == 0, nil
}

// ToolManifests returns every registered manifest by tool name.
func (db *DB) ToolManifests(ctx context.Context) (map[string]json.RawMessage, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT name, manifest FROM tool_manifests ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var name, m string
		if err := rows.Scan(&name, &m); err != nil {
			return nil, err
		}
		out[name] = json.RawMessage(m)
	}
	return out, rows.Err()
}

// DeleteToolManifest removes a tool's registered manifest and reports whether it
// existed.
func (db *DB) DeleteToolManifest(ctx context.Context, name string) (bool, error) {
	res, err := db.sql.ExecContext(ctx, `DELETE FROM tool_manifests WHERE name = ?`, name)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
