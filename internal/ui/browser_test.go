package ui_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/daemon"
	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/home"
	"github.com/clawbox/clawbox/internal/poll"
	"github.com/clawbox/clawbox/internal/testkit"
	"github.com/clawbox/clawbox/internal/wasm/exampletools"
)

// EnvScreenshots names a directory for the browser test's screenshots (one PNG per
// view). Without it they go to the test's artifact directory (go test -artifacts).
const EnvScreenshots = "CLAWBOX_UI_SCREENSHOTS"

// Hostile strings a sandbox controls: shown on the page, they must stay text.
const (
	xssScript = `<script>window.__pwned="script"</script>`
	xssImg    = `<img src=x onerror="window.__pwned=1">`
)

// chromium returns the path of Debian's chromium, or skips (fails in CI, where
// scripts/test.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: scripts/test.sh installs it (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium to run the dashboard's browser test")
	return ""
}

// browserLog collects what the page did: every request URL, exceptions and errors.
type browserLog struct {
	mu       sync.Mutex
	requests []string
	problems []string
}

func (b *browserLog) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, e.Request.URL)
	case *runtime.EventExceptionThrown:
		b.problems = append(b.problems, "exception: "+(&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
	case *log.EventEntryAdded:
		// Error answers of the API (a 404 the page expects, such as /agents on a
		// server without agents) are logged by the network source; anything else
		// at error level (a CSP violation, a Trusted Types refusal) is a problem.
		if e.Entry.Level == log.EntryLevelError && e.Entry.Source != log.EntrySourceNetwork {
			b.problems = append(b.problems, fmt.Sprintf("log %s: %s", e.Entry.Source, e.Entry.Text))
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, "console.error: "+strings.Join(parts, " "))
		}
	}
}

func (b *browserLog) snapshot() (requests, problems []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...), append([]string(nil), b.problems...)
}

// TestDashboardInBrowser drives the dashboard in headless Chromium against a real
// server with real sandboxes: log in, see a spawned sandbox appear without a reload,
// follow its logs, see its refused request arrive live in the audit view, run a
// command, kill it from the page; every hostile string stays text, and no request
// leaves for another origin. A screenshot of each view is written.
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromium(t)
	if err := dockertest.Ping(); err != nil {
		t.Skipf("Docker daemon not reachable (%v): start dockerd or set DOCKER_HOST to run this test", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	image := dockertest.RandomTag()
	if err := dockertest.BuildImage(ctx, image); err != nil {
		t.Fatalf("test image: %v", err)
	}
	t.Cleanup(func() {
		if err := dockertest.RemoveImage(image); err != nil {
			t.Errorf("remove test image: %v", err)
		}
	})

	cfg := serverConfig(t, image)
	cfg.Containers.WarmPool = []config.WarmPool{{Name: "ui", Image: image, Size: 1}}
	base, tok := runServer(t, cfg)
	c, err := client.New(base, client.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	shots := screenshotDir(t)

	var blog browserLog
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 900),
		chromedp.UserDataDir(profileDir(t)),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(blog.listen))
	defer bcancel()
	// The first Run starts the browser and ties its tab to the context it is given:
	// give it the long-lived one, and the steps below their own deadlines.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(bctx, 3*time.Minute)
		defer scancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			shot(t, bctx, shots, "failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	// waitJS waits until the expression is true in the page.
	waitJS := func(what, expr string) {
		t.Helper()
		run(what, voidPoll(expr, 2*time.Minute))
	}
	evalString := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}

	// Log in: a wrong token is refused, the right one is kept in sessionStorage only.
	run("open the login page", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	shot(t, bctx, shots, "login")
	run("wrong token", chromedp.SendKeys(chromedp.CSS("#login-token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login-form button")))
	waitJS("refusal message", `document.getElementById('login-message').textContent.includes('Wrong token')`)
	run("right token", chromedp.SetValue(chromedp.CSS("#login-token"), tok), chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	if got := evalString(`sessionStorage.getItem('clawbox.token')`); got != tok {
		t.Errorf("sessionStorage token = %q", got)
	}
	if got := evalString(`location.href + '|' + document.cookie + '|' + JSON.stringify(localStorage)`); strings.Contains(got, tok) {
		t.Errorf("the token is in the URL, a cookie or localStorage: %q", got)
	}
	waitJS("the audit feed is live", `document.getElementById('live').textContent === 'live'`)

	// A sandbox spawned behind the page's back appears in the list without a reload.
	run("sandboxes view", chromedp.Navigate(base+"/ui/#/sandboxes"), chromedp.WaitVisible(chromedp.CSS("table.sandboxes")))
	script := strings.Join([]string{
		`echo 'first line'`,
		`echo '` + xssScript + `'`,
		`echo '` + xssImg + `' >&2`,
		`/agent -proxy https://example.com:1/refused-at-start`,
		`echo 'ready-line'`,
		`exec sleep 600`,
	}, "; ")
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{
		Task:         "dashboard test " + xssImg,
		Labels:       map[string]string{"suite": "ui", "xss": xssScript, "img": xssImg},
		Command:      []string{"sh", "-c", script},
		Capabilities: &api.ContainerCapabilities{Workspace: true},
	})
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	id := info.ContainerID
	t.Cleanup(func() { c.KillWithWorkspace(context.Background(), id) })
	row := fmt.Sprintf(`document.querySelector('tr[data-id=%q]')`, id)
	waitJS("the spawned sandbox's row", row+` !== null && `+row+`.textContent.includes('running')`)
	if got := evalString(row + `.textContent`); !strings.Contains(got, xssScript) || !strings.Contains(got, xssImg) {
		t.Errorf("the hostile labels are not shown as text: %q", got)
	}
	// With a workspace it matched no pool: cold. A plain spawn claims from the
	// pool, and its row says warm.
	waitJS("the workspace sandbox shown cold", row+`.querySelector('span.cold') !== null && `+row+`.querySelector('span.warm') === null`)
	poll.Until(t, poll.Server, "the warm pool ready", func() (bool, error) {
		h, err := c.Health(ctx)
		if err != nil {
			return false, err
		}
		d, _ := h.Containers()
		return len(d.Pools) == 1 && d.Pools[0].Ready == 1, fmt.Errorf("%+v", d)
	})
	warm, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "dashboard warm", Command: []string{"sleep", "600"}})
	if err != nil || !warm.Warm {
		t.Fatalf("spawn from the pool: %+v, %v", warm, err)
	}
	t.Cleanup(func() { c.Kill(context.Background(), warm.ContainerID) })
	warmRow := fmt.Sprintf(`document.querySelector('tr[data-id=%q]')`, warm.ContainerID)
	waitJS("the claimed sandbox shown warm", warmRow+` !== null && `+warmRow+`.querySelector('span.warm') !== null`)
	// Extend from the list: the server's deadline moves to 30 minutes from now.
	run("extend", chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`tr[data-id=%q] input.mins`, id)), "30"),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-id=%q] .extend button`, id))))
	poll.Until(t, time.Minute, "the deadline set from the page", func() (bool, error) {
		got, err := c.Container(ctx, id)
		if err != nil {
			return false, err
		}
		return got.Deadline != nil && time.Until(*got.Deadline) > 25*time.Minute, fmt.Errorf("deadline %v", got.Deadline)
	})
	waitJS("the row shows the new deadline", row+`.querySelectorAll('td')[5].textContent.startsWith('in 29m') || `+row+`.querySelectorAll('td')[5].textContent.startsWith('in 30m')`)

	// A real agent appears in the agents panel with its sandbox, and the panel's
	// pause and resume buttons drive it: the server says so, not only the page.
	const agentID = "ui-agent"
	if _, err := c.CreateAgent(ctx, api.AgentConfig{AgentID: agentID, Name: "agent " + xssImg}); err != nil {
		t.Fatalf("create agent: %v", err)
	}
	t.Cleanup(func() { _ = c.RemoveAgent(context.Background(), agentID, true) })
	ag, err := c.StartAgent(ctx, agentID)
	if err != nil || ag.ContainerID == nil {
		t.Fatalf("start agent: %+v %v", ag, err)
	}
	agentRow := `[...document.querySelectorAll('#agents tbody tr')].find(tr => tr.querySelector('td') && tr.querySelector('td').textContent === ` + fmt.Sprintf("%q", agentID) + `)`
	agentStatus := func(want string) string {
		return `(() => { const r = ` + agentRow + `; return r !== undefined && r.querySelector('.badge').textContent === '` + want + `'; })()`
	}
	waitJS("the agent's row, running", agentStatus(api.AgentStatusRunning))
	if got := evalString(agentRow + `.textContent`); !strings.Contains(got, xssImg) || !strings.Contains(got, *ag.ContainerID) {
		t.Errorf("the agent's row does not show its name as text and its sandbox %s: %q", *ag.ContainerID, got)
	}
	if got := evalString(agentRow + `.querySelector('a').getAttribute('href')`); got != "#/sandbox/"+*ag.ContainerID {
		t.Errorf("the agent's sandbox link = %q", got)
	}
	agentIs := func(want string) {
		t.Helper()
		poll.Until(t, time.Minute, "the agent "+want+" from the page", func() (bool, error) {
			got, err := c.Agent(ctx, agentID)
			if err != nil {
				return false, err
			}
			return got.Status == want, fmt.Errorf("status %s", got.Status)
		})
	}
	clickAgent := func(verb string) {
		t.Helper()
		run(verb+" the agent", chromedp.Evaluate[chromedp.Void](`[...`+agentRow+`.querySelectorAll('button')].find(b => b.textContent === '`+verb+`').click()`))
	}
	clickAgent("pause")
	agentIs(api.AgentStatusPaused)
	waitJS("the agent's row, paused", agentStatus(api.AgentStatusPaused))
	clickAgent("resume")
	agentIs(api.AgentStatusRunning)
	waitJS("the agent's row, running again", agentStatus(api.AgentStatusRunning))
	shot(t, bctx, shots, "sandboxes")

	// Its view: the record, the logs as they stream, a command in the exec console.
	// Clicked in the page: the list refreshes every few seconds, and a node
	// looked up from outside may be replaced before the click lands.
	run("open the sandbox", chromedp.Evaluate[chromedp.Void](row+`.querySelector('a').click()`), chromedp.WaitVisible(chromedp.CSS("#logs")))
	waitJS("the logs stream", `document.getElementById('logs').textContent.includes('ready-line')`)
	logs := evalString(`document.getElementById('logs').textContent`)
	if !strings.Contains(logs, xssScript) || !strings.Contains(logs, xssImg) {
		t.Errorf("the hostile log lines are not shown as text: %q", logs)
	}
	run("exec", chromedp.SendKeys(chromedp.CSS(`input[name=cmd]`), `echo exec-$((40+2)) > /workspace/note.txt; cat /workspace/note.txt`),
		chromedp.Click(chromedp.CSS(`.exec-form button[type=submit]`)))
	waitJS("the exec output", `document.getElementById('exec-output').textContent.includes('exec-42')`)
	run("list /workspace", chromedp.Click(chromedp.CSS(`.files-form button[type=submit]`)))
	waitJS("the file browser lists the new file", `[...document.querySelectorAll('table.files td')].some(td => td.textContent === 'note.txt')`)
	// Upload a file from the page, and download one.
	up := filepath.Join(t.TempDir(), "upload.txt")
	if err := os.WriteFile(up, []byte("uploaded from the page\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("upload", chromedp.SetUploadFiles(chromedp.CSS(`input[name=upload]`), []string{up}), chromedp.Click(chromedp.CSS(`.upload button`)))
	waitJS("the uploaded file is listed", `[...document.querySelectorAll('table.files td')].some(td => td.textContent === 'upload.txt')`)
	var uploaded strings.Builder
	if _, err := c.ReadFile(ctx, id, "/workspace/upload.txt", &uploaded); err != nil || uploaded.String() != "uploaded from the page\n" {
		t.Errorf("the uploaded file in the sandbox: %q, %v", uploaded.String(), err)
	}
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	run("download", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('table.files a')].find(a => a.textContent === 'note.txt').click()`))
	poll.Until(t, time.Minute, "the downloaded file", func() (bool, error) {
		b, err := os.ReadFile(filepath.Join(downloads, "note.txt"))
		return err == nil && string(b) == "exec-42\n", fmt.Errorf("%q %v", b, err)
	})
	shot(t, bctx, shots, "sandbox")

	// The audit view: a refusal made while it is open arrives through the stream
	// and stands out; a click shows every field.
	run("audit view", chromedp.Navigate(base+"/ui/#/audit"), chromedp.WaitVisible(chromedp.CSS("table.audit")))
	waitJS("the earlier refusal", `[...document.querySelectorAll('tr.refused')].some(tr => tr.textContent.includes('refused-at-start'))`)
	if _, err := c.Exec(ctx, id, api.ExecRequest{Cmd: []string{"/agent", "-proxy", "https://example.com:1/refused-live"}}); err != nil {
		t.Fatalf("exec: %v", err)
	}
	waitJS("the live refusal", `[...document.querySelectorAll('tr.refused')].some(tr => tr.textContent.includes('refused-live') && tr.textContent.includes('blocked'))`)
	run("expand the refusal", chromedp.Evaluate[chromedp.Void](
		`[...document.querySelectorAll('tr.refused')].find(tr => tr.textContent.includes('refused-live')).click()`))
	waitJS("every field of the record", `[...document.querySelectorAll('tr.detail:not([hidden])')].some(tr => tr.textContent.includes('decision') && tr.textContent.includes('refused-live'))`)
	shot(t, bctx, shots, "audit")
	// Filters: only refusals, then only this sandbox's lifecycle records.
	run("filter refusals", chromedp.SetValue(chromedp.CSS(`select[name=decision]`), "refused"), chromedp.Click(chromedp.CSS(`.filters button[type=submit]`)))
	waitJS("only refusals listed", `(() => { const rs = [...document.querySelectorAll('table.audit tr.record')]; return rs.length >= 2 && rs.every(tr => tr.classList.contains('refused')); })()`)
	run("filter lifecycle", chromedp.SetValue(chromedp.CSS(`select[name=decision]`), ""), chromedp.SetValue(chromedp.CSS(`select[name=kind]`), "lifecycle"),
		chromedp.SetValue(chromedp.CSS(`input[name=container_id]`), id), chromedp.Click(chromedp.CSS(`.filters button[type=submit]`)))
	waitJS("only lifecycle records", `(() => { const rs = [...document.querySelectorAll('table.audit tr.record')]; return rs.length >= 1 && rs.every(tr => tr.classList.contains('k-lifecycle')) && rs.some(tr => tr.textContent.includes('spawned')); })()`)
	run("clear filters", chromedp.Click(chromedp.CSS(`.filters button[type=button]`)))

	// The other views render what the server has.
	run("overview", chromedp.Navigate(base+"/ui/#/overview"), chromedp.WaitVisible(chromedp.CSS(".cards .card")))
	waitJS("spawn latency chart", `document.querySelector('svg.chart rect.bar') !== null`)
	// Reloaded (the token stays in the tab's sessionStorage), the page has sampled
	// nothing yet, and nothing is sent while it is open: the refusals made before
	// are in its egress chart all the same, from the audit trail.
	run("reload the overview", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".cards .card")))
	waitJS("earlier refusals in the egress chart", `document.querySelector('svg.chart rect.s-blocked') !== null`)
	waitJS("the warm pool's claims", `[...document.querySelectorAll('li')].some(li => li.textContent.startsWith('ui: 1 hits, 0 misses'))`)
	shot(t, bctx, shots, "overview")

	run("tools", chromedp.Navigate(base+"/ui/#/tools"), chromedp.WaitVisible(chromedp.CSS("#reload-tools")))
	// The server compiles its tools in the background: slow under the race detector.
	sctx, scancel := context.WithTimeout(bctx, poll.Server)
	if err := chromedp.Do(sctx, voidPoll(`[...document.querySelectorAll('.tool h2')].some(h => h.textContent.includes('echo'))`, poll.Server)); err != nil {
		t.Fatalf("the echo tool is not shown: %v", err)
	}
	scancel()
	run("run echo", chromedp.SetValue(chromedp.CSS(`textarea[aria-label="params for echo"]`), `{"say": "`+strings.ReplaceAll(xssScript, `"`, `\"`)+`"}`),
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('.tool')].find(a => a.querySelector('h2').textContent.includes('echo')).querySelector('.run button').click()`))
	waitJS("the tool's output", `[...document.querySelectorAll('.tool pre.result')].some(p => p.textContent.includes('window.__pwned'))`)
	shot(t, bctx, shots, "tools")

	run("credentials", chromedp.Navigate(base+"/ui/#/credentials"), chromedp.WaitVisible(chromedp.CSS(`input[name=name]`)))
	const secret = "ghp_dashboardtestsecret0123456789abcdef"
	run("add a credential", chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "GITHUB_TOKEN"),
		chromedp.SendKeys(chromedp.CSS(`input[name=value]`), secret),
		chromedp.SendKeys(chromedp.CSS(`input[name=host]`), "api.github.com"),
		chromedp.Click(chromedp.CSS(`.grid-form button[type=submit]`)))
	waitJS("the credential is listed", `[...document.querySelectorAll('td')].some(td => td.textContent === 'GITHUB_TOKEN')`)
	if got := evalString(`document.body.textContent + [...document.querySelectorAll('input')].map(i => i.value).join('|')`); strings.Contains(got, secret) {
		t.Error("the credential's value is on the page after saving")
	}
	shot(t, bctx, shots, "credentials")

	run("policy check", chromedp.Navigate(base+"/ui/#/policy"), chromedp.WaitVisible(chromedp.CSS(`input[name=url]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=url]`), "https://example.com:1/x"),
		chromedp.SendKeys(chromedp.CSS(`input[name=container_id]`), id),
		chromedp.Click(chromedp.CSS(`.grid-form button[type=submit]`)))
	waitJS("the verdict", `document.querySelector('.verdict .refused') !== null`)
	shot(t, bctx, shots, "policy")

	// Kill from the page (a second click confirms).
	run("back to the list", chromedp.Navigate(base+"/ui/#/sandboxes"), chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-id=%q] button[data-action=kill]`, id))))
	run("kill", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-id=%q] button[data-action=kill]`, id))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-id=%q] button.armed`, id))))
	waitJS("the row says killed", row+` !== null && `+row+`.querySelector('.badge').textContent === 'killed'`)
	got, err := c.Container(ctx, id)
	if err != nil || got.Status != api.ContainerStatusKilled {
		t.Errorf("after the kill from the page the server says %+v, %v", got, err)
	}

	// Nothing was parsed as markup, nothing ran, nothing went elsewhere.
	if got := evalString(`String(window.__pwned) + ' ' + document.querySelectorAll('main script, main img').length`); got != "undefined 0" {
		t.Errorf("hostile markup was parsed: __pwned and injected elements = %q", got)
	}
	requests, problems := blog.snapshot()
	origin := base
	if len(requests) < 10 {
		t.Errorf("only %d requests seen: the network log is not working", len(requests))
	}
	for _, r := range requests {
		if !sameOrigin(r, origin) {
			t.Errorf("the page requested %s, outside the server's origin %s", r, origin)
		}
	}
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}

	// Signing out forgets the token.
	run("sign out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	if got := evalString(`String(sessionStorage.getItem('clawbox.token'))`); got != "null" {
		t.Errorf("after signing out sessionStorage holds %q", got)
	}

	// The CSP is in force: Trusted Types refuse markup given to an HTML sink.
	if got := evalString(`(() => { try { document.createElement('div').innerHTML = '<b>x</b>'; return 'assigned'; } catch (e) { return e.name; } })()`); got != "TypeError" {
		t.Errorf("innerHTML with a string: %q, want the Trusted Types TypeError", got)
	}
}

// voidPoll waits up to timeout for a JavaScript expression to be true.
func voidPoll(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout))
}

// sameOrigin reports whether u is on origin (blob: URLs carry their origin).
func sameOrigin(u, origin string) bool {
	u = strings.TrimPrefix(u, "blob:")
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	return p.Scheme+"://"+p.Host == origin
}

// shot writes a PNG of the page as <dir>/<name>.png.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// From the top, so that the sticky header is where it belongs.
	if err := chromedp.Do(sctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()`)); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot %s", p)
}

// profileDir is Chromium's profile directory. Its helper processes can still write
// there for a moment after the browser exits, so its removal is retried rather
// than failing the test as t.TempDir's would.
func profileDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "cbui-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for os.RemoveAll(d) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	})
	return d
}

func screenshotDir(t *testing.T) string {
	if d := os.Getenv(EnvScreenshots); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// serverConfig is a fresh clawbox home whose sandboxes run image, with example.com
// mapped to loopback (no request of the test can leave the machine: the refused
// ones are refused before any connection) and the example tool echo installed.
func serverConfig(t *testing.T, image string) *config.Config {
	t.Helper()
	d, err := os.MkdirTemp("", "cbui") // short: socket paths below it must fit 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	res, err := home.Init(context.Background(), filepath.Join(d, "cb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(res.Config, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Port = testkit.FreePort(t)
	cfg.Logging.Level = "error"
	cfg.Containers.AllowedImages = []string{"clawbox-test/"}
	cfg.Containers.DefaultImage = image
	cfg.Proxy.AllowPrivateCIDRs = []string{"127.0.0.0/8"}
	cfg.Proxy.Hosts = map[string][]string{"example.com": {"127.0.0.1"}}
	cfg.ContainerPolicy.NetworkAllowlist = []string{"https://example.com:9/"}
	cfg.Sandbox.CacheDir = filepath.Join(d, "cache")
	for _, n := range []string{"echo"} {
		mod, err := exampletools.Module(n)
		if err != nil {
			t.Fatal(err)
		}
		man, err := exampletools.Manifest(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, n+".wasm"), mod, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Sandbox.ToolDir, n+".json"), man, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// runServer runs `clawbox serve` in-process until the test ends and returns its
// address and token.
func runServer(t *testing.T, cfg *config.Config) (base, token string) {
	t.Helper()
	token, err := cfg.Token()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []string, 1)
	done := make(chan error, 1)
	var serverLog testkit.Buffer
	go func() {
		done <- daemon.Run(ctx, cfg, daemon.Options{Stderr: &serverLog, Ready: func(a []string) { ready <- a }})
	}()
	select {
	case addrs := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
			if t.Failed() {
				t.Logf("server log:\n%s", serverLog.String())
			}
		})
		return addrs[0], token
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v\n%s", err, serverLog.String())
	case <-time.After(3 * time.Minute):
		cancel()
		t.Fatal("server did not become ready")
	}
	return "", ""
}
