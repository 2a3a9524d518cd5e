package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/clawbox/clawbox/api"
)

// AuditQuery filters audit records. Empty fields match everything.
type AuditQuery struct {
	ContainerID string
	Tool        string
	Decision    string // allowed, blocked, leak, rate_limited, error
	Kind        string // request, lifecycle, execution, gap
	Since       string // RFC 3339 time, or a duration such as "15m" meaning that long ago
	Limit       int    // GET /audit only; 0 means the server's default
}

func (q AuditQuery) values(withLimit bool) url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("container_id", q.ContainerID)
	set("tool", q.Tool)
	set("decision", q.Decision)
	set("kind", q.Kind)
	set("since", q.Since)
	if withLimit && q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// Audit returns audit records, newest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]api.AuditRecord, error) {
	var out api.AuditList
	if err := c.do(ctx, http.MethodGet, withQuery("/audit", q.values(true)), nil, &out); err != nil {
		return nil, err
	}
	return out.Records, nil
}

// AuditStream calls fn for each audit record written from now on, until ctx is done
// (then it returns nil), the server ends the stream, or fn returns an error.
func (c *Client) AuditStream(ctx context.Context, q AuditQuery, fn func(api.AuditRecord) error) error {
	resp, err := c.stream(ctx, http.MethodGet, withQuery("/audit/stream", q.values(false)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readSSE(resp, func(data []byte) error {
		var rec api.AuditRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("decode audit event: %w", err)
		}
		return fn(rec)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// stream sends a request for a long-lived response (no overall timeout).
func (c *Client) stream(ctx context.Context, method, path string) (*http.Response, error) {
	return c.sendRaw(ctx, c.streaming(), method, path, "", nil)
}

// readSSE reads Server-Sent Events and calls fn with each event's data.
func readSSE(resp *http.Response, fn func(data []byte) error) error {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				if err := fn([]byte(strings.Join(data, "\n"))); err != nil {
					return err
				}
				data = data[:0]
			}
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return sc.Err()
}
