package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/internal/supervisor"
)

// Supervisor paths inside every container sandbox.
const (
	// ContainerSupervisorPath is where the supervisor binary is mounted, read-only;
	// it is the container's entrypoint and PID 1.
	ContainerSupervisorPath = "/run/clawbox-supervisor"
	// ContainerSupervisorSocket is the socket the supervisor dials (the server
	// listens on it, in the sandbox's socket dir).
	ContainerSupervisorSocket = ContainerSocketDir + "/" + supervisorSocketName
	// ContainerSupervisorTokenPath is the supervisor's token file.
	ContainerSupervisorTokenPath = ContainerSocketDir + "/" + supervisorTokenName
)

const (
	supervisorSocketName = "supervisor.sock"
	supervisorTokenName  = "supervisor-token"
	// supervisorWait bounds how long a call waits for the supervisor to connect
	// (it dials within milliseconds of the container's start, and redials within
	// a second of a server restart) before answering 503.
	supervisorWait = 5 * time.Second
)

// supervisorLink is the server's side of one sandbox's supervisor: the listener
// on its socket, the accept loop, and the connected client. A new connection is
// taken only while there is no live one, so an impostor cannot displace a
// working supervisor. Close stops the loop, waits for it and closes everything.
type supervisorLink struct {
	id   string
	ln   *supervisor.Listener
	log  *slog.Logger
	wait time.Duration // how long client waits for a connection (supervisorWait)

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and the main-exit watchers

	mu      sync.Mutex // guards cur, changed, closed
	cur     *supervisor.Client
	changed chan struct{} // closed and replaced when cur changes
	closed  bool

	closeOnce sync.Once
}

// listenSupervisor listens on dir's supervisor socket for supervisors presenting
// token and starts accepting.
func listenSupervisor(id, dir, token string, log *slog.Logger) (*supervisorLink, error) {
	ln, err := supervisor.Listen(filepath.Join(dir, supervisorSocketName), token)
	if err != nil {
		return nil, err
	}
	k := &supervisorLink{id: id, ln: ln, log: log, wait: supervisorWait, changed: make(chan struct{})}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	k.wg.Add(1)
	go k.accept()
	return k, nil
}

func (k *supervisorLink) accept() {
	defer k.wg.Done()
	for {
		c, err := k.ln.Accept(k.ctx)
		if err != nil {
			if k.ctx.Err() == nil {
				k.log.Warn("sandbox: supervisor accept", "sandbox", k.id, "err", err)
			}
			return
		}
		k.mu.Lock()
		if k.closed || (k.cur != nil && k.cur.Alive()) {
			k.mu.Unlock()
			c.Close()
			continue
		}
		old := k.cur
		k.cur = c
		close(k.changed)
		k.changed = make(chan struct{})
		k.mu.Unlock()
		if old != nil {
			old.Close()
		}
		// Asking for the main command's exit lets the supervisor end as soon as
		// the main command does; the exit itself is Docker's to report.
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			_, _ = c.WaitMain(k.ctx)
		}()
	}
}

// client returns the connected supervisor, waiting up to k.wait for one;
// without one it is 503 unavailable saying so.
func (k *supervisorLink) client(ctx context.Context) (*supervisor.Client, error) {
	t := time.NewTimer(k.wait)
	defer t.Stop()
	for {
		k.mu.Lock()
		c, ch, closed := k.cur, k.changed, k.closed
		k.mu.Unlock()
		if closed {
			return nil, api.Errorf(api.CodeUnavailable, "sandbox %q: its supervisor link is closed (the sandbox is ending)", k.id)
		}
		if c != nil && c.Alive() {
			return c, nil
		}
		select {
		case <-ch:
		case <-t.C:
			return nil, api.Errorf(api.CodeUnavailable, "sandbox %q: its supervisor is not connected (the workload may have killed it or closed its connection)", k.id)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// connected reports whether a supervisor is connected now, without waiting.
func (k *supervisorLink) connected() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.closed && k.cur != nil && k.cur.Alive()
}

// Close closes the listener and the client and waits for the loop. Idempotent.
func (k *supervisorLink) Close() error {
	var err error
	k.closeOnce.Do(func() {
		k.mu.Lock()
		k.closed = true
		k.mu.Unlock()
		k.cancel()
		err = k.ln.Close() // closes every client it accepted
		k.wg.Wait()
	})
	return err
}

// writeSupervisorToken writes the supervisor token file (0444) into a socket dir.
func writeSupervisorToken(dir, token string) error {
	tf := filepath.Join(dir, supervisorTokenName)
	if err := os.WriteFile(tf, []byte(token), 0o444); err != nil {
		return fmt.Errorf("supervisor token file: %w", err)
	}
	if err := os.Chmod(tf, 0o444); err != nil {
		return fmt.Errorf("supervisor token file: %w", err)
	}
	return nil
}

// readSupervisorToken reads back the token a sandbox's supervisor presents. The
// socket dir is the server's own (the sandbox sees it read-only).
func readSupervisorToken(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, supervisorTokenName))
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) != 64 {
		return "", errors.New("supervisor token file is malformed")
	}
	return tok, nil
}

// SupervisorArgs returns the supervisor's command line up to the main command,
// which follows it: the container's entrypoint. With door (policy container)
// the supervisor also serves the proxy bridge on ContainerProxyListen, relaying
// to the door's socket with the door token; without one there is no bridge.
func SupervisorArgs(maxFileBytes int64, door bool) []string {
	args := []string{ContainerSupervisorPath, "-socket", ContainerSupervisorSocket, "-token-file", ContainerSupervisorTokenPath,
		"-max-file-bytes", fmt.Sprint(maxFileBytes)}
	if door {
		args = append(args, "-proxy-socket", ContainerSocketPath, "-proxy-token-file", ContainerTokenPath, "-proxy-listen", ContainerProxyListen)
	}
	return append(args, "--")
}

// WaitMainSupervisorArgs is SupervisorArgs for a pooled sandbox: no main
// command follows (Spec.WaitMain), the supervisor waits for the server's and
// re-reads its token file at every dial; the bridge reads the door token when
// the main command arrives.
func WaitMainSupervisorArgs(maxFileBytes int64, door bool) []string {
	args := SupervisorArgs(maxFileBytes, door)
	return append(args[:len(args)-1:len(args)-1], "-wait-main")
}
