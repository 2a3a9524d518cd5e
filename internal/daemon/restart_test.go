package daemon

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clawbox/clawbox/api"
	cbclient "github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/home"
	"github.com/clawbox/clawbox/internal/sandbox"

	"github.com/clawbox/clawbox/internal/testkit"
)

// serverProcess is `clawbox serve` running as a real process, to be killed with
// SIGKILL as a crash would.
type serverProcess struct {
	cmd  *exec.Cmd
	out  testkit.Buffer
	done chan struct{} // closed when the process has been reaped
}

func startServe(t *testing.T, bin, dir string, port int) *serverProcess {
	t.Helper()
	p := &serverProcess{cmd: exec.Command(bin, "serve", "--dir", dir), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "CLAWBOX_PORT="+strconv.Itoa(port), "CLAWBOX_LOG_LEVEL=info", "CLAWBOX_HOME=", "CLAWBOX_HOST=")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"
	deadline := time.Now().Add(90 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("clawbox serve exited (%v):\n%s", p.cmd.ProcessState, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			// SIGQUIT makes the Go runtime print every goroutine: where it is stuck.
			p.cmd.Process.Signal(syscall.SIGQUIT)
			<-p.done
			t.Fatalf("clawbox serve did not come up:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL (no shutdown code runs) and reaps the process; idempotent.
func (p *serverProcess) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// stop asks for a graceful shutdown (SIGINT) and waits.
func (p *serverProcess) stop(t *testing.T) {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Errorf("clawbox serve did not stop on SIGINT:\n%s", p.out.String())
		p.kill()
	}
}

// TestSIGKILLDuringSpawnThenRestart kills `clawbox serve` with SIGKILL while a spawn
// is in flight (its container exists, the spawn has not answered), restarts it, and
// checks that the engine and the store agree: every container of this instance has a
// running record, a sandbox that had been spawned is adopted with a working door and
// token, the interrupted one is running or finished (never stuck in creating), and
// only running sandboxes have a socket directory.
func TestSIGKILLDuringSpawnThenRestart(t *testing.T) {
	requireDocker(t)
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "clawbox")
	build := exec.Command("go", "build", "-o", bin, "github.com/clawbox/clawbox/cmd/clawbox")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(shortTempDir(t), "cb")
	res, err := home.Init(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	text := string(conf)
	for old, repl := range map[string]string{
		`default_image = "alpine:latest"`:                                               `default_image = "` + testImage + `"`,
		`allowed_images = ["alpine", "debian", "ubuntu", "python", "node", "clawbox/"]`: `allowed_images = ["clawbox-test/"]`,
		`stop_grace = "5s"`: `stop_grace = "0s"`,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("config.toml has no %q", old)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	if err := os.WriteFile(res.Config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testkit.FreePort(t)
	tokb, err := os.ReadFile(res.Token)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	srv := startServe(t, bin, dir, port)
	db, err := openForTest(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	instance, _, err := db.Meta(ctx, "instance_id")
	db.Close()
	if err != nil || instance == "" {
		t.Fatalf("instance id: %q %v", instance, err)
	}
	byInstance := client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", sandbox.LabelInstance+"="+instance)}
	t.Cleanup(func() {
		l, _ := c.ContainerList(context.Background(), byInstance)
		for _, ct := range l.Items {
			c.ContainerRemove(context.Background(), ct.ID, client.ContainerRemoveOptions{Force: true})
		}
	})

	api1 := apiClientToken(t, port, strings.TrimSpace(string(tokb)))
	adopted, err := api1.Spawn(ctx, api.ContainerSpawnRequest{Task: "survivor", Command: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	// The second spawn is interrupted: SIGKILL as soon as its container exists.
	spawned := make(chan error, 1)
	go func() {
		_, err := api1.Spawn(ctx, api.ContainerSpawnRequest{Task: "interrupted", Command: []string{"sleep", "300"}})
		spawned <- err
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := c.ContainerList(ctx, byInstance)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) >= 2 {
			break
		}
		select {
		case err := <-spawned:
			t.Logf("the second spawn answered (%v) before its container was seen: killing now", err)
			spawned <- err
		default:
		}
		if len(spawned) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.kill()
	<-spawned // the client sees a broken connection, or the answer if it won the race

	srv2 := startServe(t, bin, dir, port)
	defer srv2.stop(t)
	api2 := apiClientToken(t, port, strings.TrimSpace(string(tokb)))
	recs, err := api2.Containers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, r := range recs {
		status[r.ContainerID] = r.Status
	}
	t.Logf("after SIGKILL and restart: %v", status)
	if len(recs) != 2 {
		t.Errorf("records after the restart: %+v, want the survivor and the interrupted spawn", recs)
	}
	if status[adopted.ContainerID] != api.ContainerStatusRunning {
		t.Errorf("the spawned sandbox after SIGKILL and restart: %s, want running (adopted)", status[adopted.ContainerID])
	}
	// Every container of this instance has a running record: no orphan.
	l, err := c.ContainerList(ctx, byInstance)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range l.Items {
		id := ct.Labels[sandbox.LabelContainerID]
		if status[id] != api.ContainerStatusRunning || ct.State != "running" {
			t.Errorf("container %s (%s) of sandbox %s whose record is %q", ct.ID[:12], ct.State, id, status[id])
		}
	}
	// Every record is consistent with the engine and the socket directories.
	proxies := filepath.Join(dir, "proxies")
	for id, st := range status {
		sock := filepath.Join(proxies, id, "proxy.sock")
		switch st {
		case api.ContainerStatusRunning:
			tok := readToken(t, proxies, id)
			code, m, err := doorCall(t, sock, "POST", "/proxy", tok, `{"url":"https://example.com/"}`)
			if err != nil || code == 401 || code >= 500 {
				t.Errorf("door of adopted %s: %d %v %v", id, code, m, err)
			}
			found := false
			for _, ct := range l.Items {
				found = found || ct.Labels[sandbox.LabelContainerID] == id
			}
			if !found {
				t.Errorf("running record %s has no container", id)
			}
		case api.ContainerStatusCreating:
			t.Errorf("sandbox %s still creating after the restart", id)
		default:
			if _, err := os.Stat(filepath.Join(proxies, id)); !os.IsNotExist(err) {
				t.Errorf("finished sandbox %s (%s) kept its socket dir: %v", id, st, err)
			}
		}
	}
	if ents, err := os.ReadDir(proxies); err == nil {
		for _, e := range ents {
			// <id>/ is a socket dir, <id>.ca-key the CA key kept beside it.
			if id := strings.TrimSuffix(e.Name(), ".ca-key"); status[id] != api.ContainerStatusRunning {
				t.Errorf("socket dir or CA key %s without a running sandbox", e.Name())
			}
		}
	}
	for id, st := range status {
		if st == api.ContainerStatusRunning {
			if k, err := api2.Kill(ctx, id); err != nil || k.Status != api.ContainerStatusKilled {
				t.Errorf("kill %s after the restart: %+v %v", id, k, err)
			}
		}
	}
}

func apiClientToken(t *testing.T, port int, token string) *cbclient.Client {
	t.Helper()
	c, err := cbclient.New("http://127.0.0.1:"+strconv.Itoa(port), cbclient.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
