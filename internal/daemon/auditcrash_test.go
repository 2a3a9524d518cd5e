package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clawbox/clawbox/api"
	cbclient "github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/audit"
	"github.com/clawbox/clawbox/internal/home"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/testkit"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

// TestAuditIndexCatchesUpAfterSIGKILL runs `clawbox serve` as a process, executes
// the echo tool with the index working, then while the test holds the store's
// write lock (so that the server writes the records to audit.jsonl but cannot
// index them), kills the server with SIGKILL and leaves a torn line at the end of
// the file, as a kill in the middle of a write would. After a restart on the same
// directory, GET /audit returns every execution exactly once, and a record written
// after the restart is indexed too.
func TestAuditIndexCatchesUpAfterSIGKILL(t *testing.T) {
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "clawbox")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/clawbox/clawbox/cmd/clawbox").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(shortTempDir(t), "cb")
	res, err := home.Init(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"echo.wasm", "echo.json"} {
		var b []byte
		if strings.HasSuffix(name, ".wasm") {
			b, err = exampletools.Module("echo")
		} else {
			b, err = exampletools.Manifest("echo")
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tools", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tokb, err := os.ReadFile(res.Token)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokb))
	auditFile := filepath.Join(dir, "audit", audit.FileName)

	var want []string // request ids of the executions, in order
	execute := func(c *cbclient.Client, i int) {
		t.Helper()
		r, err := c.Execute(ctx, api.ExecuteRequest{Tool: "echo", Params: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
		if err != nil {
			t.Fatalf("execute %d: %v", i, err)
		}
		if r.RequestID == "" {
			t.Fatalf("execute %d: no request id", i)
		}
		want = append(want, r.RequestID)
	}

	port := testkit.FreePort(t)
	srv := startServe(t, bin, dir, port)
	c := apiClientToken(t, port, token)
	waitToolsLoaded(t, c, 1)
	for i := range 3 {
		execute(c, i)
	}
	waitAudited(t, c, want)

	// Hold the write lock: the server's inserts wait, then fail; the records
	// reach the file only.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "state.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 7; i++ {
		execute(c, i)
	}
	poll.Until(t, poll.Short, "the executions in audit.jsonl", func() (bool, error) {
		ids, err := fileExecutions(auditFile)
		return len(ids) == len(want), fmt.Errorf("%d of %d in the file (%v)", len(ids), len(want), err)
	})
	srv.kill()
	if got := indexedExecutions(t, ctx, conn); len(got) != 3 {
		t.Fatalf("before the restart the index holds %d executions, want the 3 from before the lock: the test did not keep the others out", len(got))
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	db.Close()
	f, err := os.OpenFile(auditFile, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time":"2026-12-03T09:00:00Z","kind":"execution","tool":"ec`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	port = testkit.FreePort(t)
	srv2 := startServe(t, bin, dir, port)
	defer srv2.stop(t)
	c2 := apiClientToken(t, port, token)
	waitAudited(t, c2, want)
	waitToolsLoaded(t, c2, 1)
	execute(c2, 7)
	waitAudited(t, c2, want)

	if ids, err := fileExecutions(auditFile); err != nil || len(ids) != len(want) {
		t.Errorf("audit.jsonl holds %d executions (%v), want %d", len(ids), err, len(want))
	}
	if got := metric(t, port, token, "clawbox_audit_skipped_lines_total"); got != "1" {
		t.Errorf("clawbox_audit_skipped_lines_total = %q, want 1 (the torn line)", got)
	}
}

// waitAudited polls GET /audit until it returns exactly the echo executions with
// the request ids want, each once, newest first; it fails on a duplicate.
func waitAudited(t *testing.T, c *cbclient.Client, want []string) {
	t.Helper()
	poll.Until(t, poll.Server, fmt.Sprintf("%d executions in GET /audit", len(want)), func() (bool, error) {
		recs, err := c.Audit(context.Background(), cbclient.AuditQuery{Kind: "execution", Tool: "echo", Limit: 1000})
		if err != nil {
			return false, err
		}
		seen := map[string]int{}
		for _, r := range recs {
			seen[r.RequestID]++
			if seen[r.RequestID] > 1 {
				t.Fatalf("GET /audit returns the execution %s twice", r.RequestID)
			}
		}
		for _, id := range want {
			if seen[id] == 0 {
				return false, fmt.Errorf("%d records; %s missing", len(recs), id)
			}
		}
		if len(recs) != len(want) {
			t.Fatalf("GET /audit returns %d executions, want %d", len(recs), len(want))
		}
		return true, nil
	})
}

// fileExecutions returns the request ids of the echo executions in the audit file
// (its complete lines that are records).
func fileExecutions(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, line := range strings.Split(string(b), "\n") {
		var r api.AuditRecord
		if json.Unmarshal([]byte(line), &r) == nil && r.Kind == api.AuditKindExecution && r.Tool == "echo" {
			ids = append(ids, r.RequestID)
		}
	}
	return ids, nil
}

// indexedExecutions reads the echo executions in the index through the test's own
// connection (inside its transaction).
func indexedExecutions(t *testing.T, ctx context.Context, conn *sql.Conn) []string {
	t.Helper()
	rows, err := conn.QueryContext(ctx, `SELECT record FROM audit WHERE kind = 'execution' AND tool = 'echo'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var r api.AuditRecord
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RequestID)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// metric returns the value of an unlabelled metric from GET /metrics.
func metric(t *testing.T, port int, token, name string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}
