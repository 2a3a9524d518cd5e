package readme

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawbox/clawbox/internal/dockertest"
	"github.com/clawbox/clawbox/internal/poll"

	"github.com/clawbox/clawbox/internal/testkit"
)

// block is one marked shell block of the README.
type block struct {
	kind  string // "run" or "background"
	until string // background: the output that says it is ready
	code  string
	line  int
}

var markerRE = regexp.MustCompile(`^<!-- quickstart:(run|background)(?: until="([^"]+)")? -->$`)

// quickstartBlocks returns the marked blocks of README in order.
func quickstartBlocks(t *testing.T, readme string) []block {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var blocks []block
	for i := 0; i < len(lines); i++ {
		m := markerRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			if strings.Contains(lines[i], "quickstart:") && strings.HasPrefix(strings.TrimSpace(lines[i]), "<!--") {
				t.Fatalf("README.md:%d: malformed quickstart marker %q", i+1, lines[i])
			}
			continue
		}
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "```sh" {
			t.Fatalf("README.md:%d: a quickstart marker must be followed by a ```sh block", i+1)
		}
		b := block{kind: m[1], until: m[2], line: i + 3}
		j := i + 2
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			b.code += lines[j] + "\n"
		}
		if j == len(lines) {
			t.Fatalf("README.md:%d: unterminated block", i+1)
		}
		if b.kind == "background" && b.until == "" {
			t.Fatalf("README.md:%d: a background block needs until=\"...\"", i+1)
		}
		blocks = append(blocks, b)
		i = j
	}
	return blocks
}

func TestQuickstart(t *testing.T) { runQuickstart(t, nil) }

// kubeCluster is the test cluster of scripts/k8s (scripts/test.sh starts it).
type kubeCluster struct {
	kubeconfig, containerd, node string
}

// TestQuickstartOnKubernetes runs the same quickstart with containers.backend =
// "kubernetes" on the test cluster: the sandbox is a Pod, its image moved from
// Docker into the cluster's containerd (no registry), and it reaches the
// upstream through its door with the credential injected, exactly as on Docker.
func TestQuickstartOnKubernetes(t *testing.T) {
	k := &kubeCluster{os.Getenv("CLAWBOX_TEST_KUBECONFIG"), os.Getenv("CLAWBOX_TEST_K8S_CONTAINERD"), os.Getenv("CLAWBOX_TEST_K8S_NODE")}
	if k.kubeconfig == "" || k.containerd == "" || k.node == "" {
		if os.Getenv("KUBERNETES_TESTS") == "require" {
			t.Fatal("KUBERNETES_TESTS=require but no test cluster: CLAWBOX_TEST_KUBECONFIG, CLAWBOX_TEST_K8S_CONTAINERD, CLAWBOX_TEST_K8S_NODE")
		}
		t.Skip("no test cluster (CLAWBOX_TEST_KUBECONFIG unset): scripts/k8s/up.sh starts one")
	}
	runQuickstart(t, k)
}

func runQuickstart(t *testing.T, kube *kubeCluster) {
	if err := dockertest.Ping(); err != nil {
		t.Skipf("Docker daemon not reachable (%v): start dockerd or set DOCKER_HOST to run the README quickstart", err)
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Fatalf("the quickstart builds its image from Debian's busybox-static: apt-get install busybox-static (%v)", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := quickstartBlocks(t, string(readme))
	if len(blocks) < 4 {
		t.Fatalf("README.md has %d quickstart blocks; want the upstream, config, server and sandbox steps", len(blocks))
	}

	// The README's commands, made private to this run: its own HOME, binary, ports
	// and image tag, so that it neither touches nor depends on the user's.
	// A short directory: the sandboxes' socket paths under it must fit in 107 bytes.
	tmp, err := os.MkdirTemp("/tmp", "cbqs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	home := filepath.Join(tmp, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	tag := make([]byte, 6)
	rand.Read(tag)
	image := "clawbox/quickstart-" + hex.EncodeToString(tag)
	upstreamPort := strconv.Itoa(testkit.FreePort(t))
	apiPort := strconv.Itoa(testkit.FreePort(t))
	pairs := []string{}
	if kube != nil {
		// After init: the backend and its cluster. After the image import: the
		// image moved into the cluster's containerd (and removed with it).
		ns := "clawbox-qs-" + hex.EncodeToString(tag[:3])
		kubectl := os.Getenv("CLAWBOX_TEST_KUBECTL")
		if kubectl == "" {
			t.Fatal("CLAWBOX_TEST_KUBECTL is unset (scripts/k8s/up.sh writes it)")
		}
		if out, err := exec.Command(kubectl, "--kubeconfig", kube.kubeconfig, "create", "namespace", ns).CombinedOutput(); err != nil {
			t.Fatalf("create namespace: %v: %s", err, out)
		}
		t.Cleanup(func() {
			exec.Command(kubectl, "--kubeconfig", kube.kubeconfig, "delete", "namespace", ns, "--grace-period=1", "--wait=true", "--timeout=60s").Run()
			exec.Command("ctr", "-a", kube.containerd, "-n", "k8s.io", "images", "rm", "docker.io/"+image+":latest").Run()
		})
		pairs = append(pairs,
			"bin/clawbox init\n", filepath.Join(tmp, "bin", "clawbox")+" init\n"+fmt.Sprintf(
				"sed -i 's|^backend = \"docker\"|backend = \"kubernetes\"|; s|^kubeconfig = \"\"|kubeconfig = %q|; s|^namespace = \"clawbox\"|namespace = %q|; s|^# node = .*|node = %q|; s|^image_pull_policy = .*|image_pull_policy = \"Never\"|' ~/.clawbox/config.toml\n",
				kube.kubeconfig, ns, kube.node),
			"- clawbox/quickstart:latest\n", "- "+image+":latest\n"+fmt.Sprintf("docker save %s:latest | ctr -a %s -n k8s.io images import -\n", image, kube.containerd),
		)
	}
	pairs = append(pairs,
		"bin/clawbox", filepath.Join(tmp, "bin", "clawbox"),
		"127.0.0.1:8088", "127.0.0.1:"+upstreamPort,
		"--dest-port 8088", "--dest-port "+upstreamPort,
		"clawbox/quickstart", image,
	)
	rewrite := strings.NewReplacer(pairs...)
	// Go keeps using the real module and build caches although HOME moves.
	goEnv, err := exec.Command("go", "env", "GOPATH", "GOMODCACHE", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	gv := strings.Split(strings.TrimSpace(string(goEnv)), "\n")
	if len(gv) != 3 {
		t.Fatalf("go env printed %q", goEnv)
	}
	env := append(os.Environ(), "GOPATH="+gv[0], "GOMODCACHE="+gv[1], "GOCACHE="+gv[2], "HOME="+home, "CLAWBOX_PORT="+apiPort, "CLAWBOX_HOME=", "CLAWBOX_AUTH_TOKEN=", "CLAWBOX_HOST=")
	t.Cleanup(func() {
		if err := dockertest.RemoveImage(image); err != nil {
			t.Logf("remove %s: %v", image, err)
		}
	})

	var outputs []*testkit.Buffer // every block's output, for the assertions and for failures
	defer func() {
		if t.Failed() {
			for i, o := range outputs {
				t.Logf("--- block %d output:\n%s", i, o.String())
			}
		}
	}()
	newCmd := func(ctx context.Context, b block) (*exec.Cmd, *testkit.Buffer) {
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", rewrite.Replace(b.code))
		cmd.Dir, cmd.Env = root, env
		out := &testkit.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// Stop the whole group (go run's child, the server) when the context ends.
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
		cmd.WaitDelay = 30 * time.Second
		outputs = append(outputs, out)
		return cmd, out
	}

	var runOut strings.Builder // the foreground blocks' output, in order
	for i, b := range blocks {
		t.Logf("README.md:%d: %s block %d", b.line, b.kind, i)
		switch b.kind {
		case "background":
			ctx, cancel := context.WithCancel(context.Background())
			cmd, out := newCmd(ctx, b)
			if err := cmd.Start(); err != nil {
				cancel()
				t.Fatalf("README.md:%d: %v", b.line, err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				cancel()
				if err := <-exited; err != nil && ctx.Err() == nil {
					t.Logf("block %d ended: %v", i, err)
				}
			})
			poll.Until(t, 5*time.Minute, fmt.Sprintf("README.md:%d: background block %d to print %q", b.line, i, b.until), func() (bool, error) {
				select {
				case err := <-exited:
					t.Fatalf("README.md:%d: background block %d exited before %q: %v\n%s", b.line, i, b.until, err, out.String())
				default:
				}
				return strings.Contains(out.String(), b.until), fmt.Errorf("output so far:\n%s", out.String())
			})
		case "run":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			cmd, out := newCmd(ctx, b)
			err := cmd.Run()
			cancel()
			if err != nil {
				t.Fatalf("README.md:%d: block %d failed: %v\n%s", b.line, i, err, out.String())
			}
			fmt.Fprintf(&runOut, "%s\n", out.String())
		}
	}

	const secret = "demo-s3cret-value-1234"
	got := runOut.String()
	// The sandboxes ran on the backend this run is about (the server says which).
	backend := `"backend":"docker"`
	if kube != nil {
		backend = `"backend":"kubernetes"`
	}
	if serve := outputs[2].String(); !strings.Contains(serve, backend) {
		t.Errorf("the server's log does not say %s:\n%s", backend, serve)
	}
	for _, want := range []string{
		`\"authorization\":\"Bearer [REDACTED]\"`,                                         // the sandbox saw the injected credential redacted
		"allowed GET http://127.0.0.1:" + upstreamPort + "/hello -> 200 credentials=demo", // the audit line
		`"credentials":["demo"]`,                                                          // which credential was injected, by name
		"http://127.0.0.1:" + upstreamPort + "  ",                                         // tools list shows http_request's allowlist
		`\"path\":\"/from-wasm\"`,                                                         // the WASM tool reached the upstream
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the quickstart's output lacks %q", want)
		}
	}
	if strings.Contains(got, secret) {
		t.Errorf("the credential's value appears in the output the sandbox, the audit or the tool produced")
	}
	// The upstream really received the credential, injected by the gateway.
	if up := outputs[0].String(); !strings.Contains(up, "Bearer "+secret) {
		t.Errorf("the upstream did not receive the injected credential:\n%s", up)
	}
	// Nothing on disk or in the server's log holds the value.
	for _, o := range outputs[1:] {
		if strings.Contains(o.String(), secret) {
			t.Errorf("a clawbox command or the server printed the credential's value")
		}
	}
	filepath.WalkDir(filepath.Join(home, ".clawbox", "audit"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the credential's value", p)
			}
		}
		return nil
	})
}
