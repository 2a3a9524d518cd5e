package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/clawbox/clawbox/api"
)

// TestAuditLineShowsAggregateCount prints an aggregated refusal record: the line
// says how many refused requests it stands for (a single refusal says nothing extra).
func TestAuditLineShowsAggregateCount(t *testing.T) {
	rec := api.AuditRecord{Time: time.Now(), Kind: api.AuditKindRequest, ContainerID: "clawbox-x",
		Decision: "blocked", Method: "GET", URL: "http://127.0.0.1:1/", Count: 37}
	var b bytes.Buffer
	if err := newAuditPrinter(&b, false).print(rec); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "[37 requests like this, aggregated]") {
		t.Errorf("aggregated record printed as %q", b.String())
	}
	// A lifecycle record says what it was about (an exec's command), shortened.
	b.Reset()
	long := "cmd \"sh\" \"-c\" \"" + strings.Repeat("x", 300) + "\"; ended_by exit"
	code := 0
	newAuditPrinter(&b, false).print(api.AuditRecord{Time: time.Now(), Kind: api.AuditKindLifecycle, ContainerID: "clawbox-x",
		Event: "exec", ExitCode: &code, Reason: long})
	if line := b.String(); !strings.Contains(line, `exec exit 0: cmd "sh" "-c"`) || !strings.Contains(line, "…") || len(line) > 300 {
		t.Errorf("exec record printed as %q", line)
	}
	rec.Count = 0
	b.Reset()
	newAuditPrinter(&b, false).print(rec)
	if strings.Contains(b.String(), "aggregated") {
		t.Errorf("single record printed as %q", b.String())
	}
}
