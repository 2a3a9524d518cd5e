package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/internal/agents"
)

var _ agents.Store = (*DB)(nil)

// CreateAgent inserts a; an existing id is errdefs.ErrAlreadyExists.
func (db *DB) CreateAgent(ctx context.Context, a *agents.Agent) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	res, err := db.sql.ExecContext(ctx, `INSERT INTO agents(id, created_at, state) VALUES (?, ?, ?)
		ON CONFLICT(id) DO NOTHING`, a.Config.AgentID, nanos(a.CreatedAt), string(b))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("agent %s: %w", a.Config.AgentID, errdefs.ErrAlreadyExists)
	}
	return nil
}

// UpdateAgent writes a over the stored agent of its id (errdefs.ErrNotFound if
// there is none).
func (db *DB) UpdateAgent(ctx context.Context, a *agents.Agent) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	res, err := db.sql.ExecContext(ctx, `UPDATE agents SET state = ? WHERE id = ?`, string(b), a.Config.AgentID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("agent %s: %w", a.Config.AgentID, errdefs.ErrNotFound)
	}
	return nil
}

// GetAgent returns one agent.
func (db *DB) GetAgent(ctx context.Context, id string) (*agents.Agent, error) {
	var s string
	err := db.sql.QueryRowContext(ctx, `SELECT state FROM agents WHERE id = ?`, id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("agent %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decodeAgent(id, s)
}

// ListAgents returns every agent, oldest first (ties by id).
func (db *DB) ListAgents(ctx context.Context) ([]*agents.Agent, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, state FROM agents ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*agents.Agent
	for rows.Next() {
		var id, s string
		if err := rows.Scan(&id, &s); err != nil {
			return nil, err
		}
		a, err := decodeAgent(id, s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteAgent removes one agent; a missing one is not an error.
func (db *DB) DeleteAgent(ctx context.Context, id string) error {
	_, err := db.sql.ExecContext(ctx, `DELETE FROM agents WHERE id = ?`, id)
	return err
}

func decodeAgent(id, s string) (*agents.Agent, error) {
	var a agents.Agent
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("agent %s: %w", id, err)
	}
	if a.Config.AgentID != id || a.Config.Lifecycle == nil {
		return nil, fmt.Errorf("agent %s: stored state is inconsistent", id)
	}
	return &a, nil
}
