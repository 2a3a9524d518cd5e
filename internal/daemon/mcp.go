package daemon

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawbox/clawbox/client"
	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/mcp"
	"github.com/clawbox/clawbox/internal/server"
	"github.com/clawbox/clawbox/internal/version"
)

// mcpEndpoint serves MCP over streamable HTTP at /mcp. Its tools call the API through
// the server's own handler, in process, so they behave exactly like the API (auth,
// limits, redaction, audit, errors). It owns the goroutine that rebuilds the tool
// set when the tool registry changes.
type mcpEndpoint struct {
	mcp *mcp.Server
	log *slog.Logger

	kick      chan struct{} // buffered 1: a pending refresh
	listed    chan struct{} // closed once a refresh has seen the initial tool load
	loaded    <-chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
	startOnce sync.Once
	closeOnce sync.Once
}

// newMCPEndpoint registers GET, POST and DELETE /mcp on srv (bearer token required).
// Call Start once every route is registered, and Close on shutdown.
func newMCPEndpoint(srv *server.Server, token string, cfg *config.Config, log *slog.Logger) (*mcpEndpoint, error) {
	backend, err := client.New("http://clawbox.in-process", client.Options{
		Token:      token,
		HTTPClient: &http.Client{Transport: inProcess{h: srv.Handler()}},
	})
	if err != nil {
		return nil, err
	}
	listed := make(chan struct{})
	ms, err := mcp.New(mcp.Config{Backend: backend, Templates: cfg.Images.Templates, Version: version.String(), Logger: log, Ready: listed})
	if err != nil {
		return nil, err
	}
	e := &mcpEndpoint{mcp: ms, log: log, kick: make(chan struct{}, 1), listed: listed, done: make(chan struct{})}
	getServer := func(*http.Request) *sdk.Server { return ms.MCP() }
	// Clients up to protocol 2025-11-25 get sessions (Mcp-Session-Id) and the GET
	// stream that carries notifications/tools/list_changed. The SDK serves the
	// sessionless protocol (2026-07-28 and later) only from a stateless handler, and
	// refuses it on a stateful one; such clients name their version in the
	// Mcp-Protocol-Version header of every request, the probe included.
	h := versionRouter{
		stateful: sdk.NewStreamableHTTPHandler(getServer, &sdk.StreamableHTTPOptions{
			Logger:         log,
			SessionTimeout: 30 * time.Minute,
		}),
		stateless: sdk.NewStreamableHTTPHandler(getServer, &sdk.StreamableHTTPOptions{
			Logger:    log,
			Stateless: true,
		}),
	}
	serve := func(w http.ResponseWriter, r *http.Request) error {
		// Streams (GET) last as long as the session: end them when the server stops,
		// so that graceful shutdown does not wait for MCP clients to hang up.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-srv.Stopping():
				cancel()
			case <-ctx.Done():
			}
		}()
		h.ServeHTTP(w, r.WithContext(ctx))
		return nil
	}
	doc := func(summary, describe string) server.Doc {
		return server.Doc{
			Summary:  summary,
			Describe: describe,
			Tags:     []string{"mcp"},
			Responses: []server.Response{
				{Status: 200, ContentType: "text/event-stream", Describe: "MCP messages (or application/json, per the MCP streamable HTTP transport)"},
			},
		}
	}
	srv.Handle(server.Route{Method: http.MethodPost, Pattern: "/mcp", Auth: server.AuthRequired, Handler: serve,
		Doc: doc("MCP: send a JSON-RPC message (streamable HTTP)",
			"The Model Context Protocol over streamable HTTP: clawbox's WASM tools and the sandbox tools. Clients up to protocol 2025-11-25: the first POST (initialize) opens a session (Mcp-Session-Id). Clients of protocol 2026-07-28 and later send Mcp-Protocol-Version on every request and are served without sessions.")})
	srv.Handle(server.Route{Method: http.MethodGet, Pattern: "/mcp", Auth: server.AuthRequired, Handler: serve,
		Doc: doc("MCP: open the session's server-to-client stream",
			"Server-sent events carrying notifications such as notifications/tools/list_changed.")})
	srv.Handle(server.Route{Method: http.MethodDelete, Pattern: "/mcp", Auth: server.AuthRequired, Handler: serve,
		Doc: doc("MCP: end a session", "Ends the session named by Mcp-Session-Id.")})
	return e, nil
}

// Start runs the refresher: it reads the tool list once, then again after each
// ToolsChanged. loaded is closed when the initial tool load has finished (loaded or
// failed): tools/list waits until a refresh that began after it has completed.
func (e *mcpEndpoint) Start(ctx context.Context, loaded <-chan struct{}) {
	e.startOnce.Do(func() {
		e.loaded = loaded
		ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
		// A refresh may already be pending (the tools loaded first): never block here.
		select {
		case e.kick <- struct{}{}:
		default:
		}
		go e.run(ctx)
	})
}

func (e *mcpEndpoint) run(ctx context.Context) {
	defer close(e.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		}
		initial := false
		select {
		case <-e.loaded:
			initial = true
		default:
		}
		if _, err := e.mcp.Refresh(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("mcp: cannot refresh the tool list", "err", err)
		}
		if initial {
			select {
			case <-e.listed:
			default:
				close(e.listed) // even after an error: the list is as good as it gets
			}
		}
	}
}

// ToolsChanged asks for the MCP tool set to be rebuilt. It never blocks, so it may
// be called from the tool registry's change callback; changes coalesce.
func (e *mcpEndpoint) ToolsChanged() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Close stops the refresher and ends every MCP session. It is idempotent.
func (e *mcpEndpoint) Close() {
	e.closeOnce.Do(func() {
		e.startOnce.Do(func() { close(e.done) }) // never started: nothing to wait for
		if e.cancel != nil {
			e.cancel()
		}
		<-e.done
		for ss := range e.mcp.MCP().Sessions() {
			ss.Close()
		}
	})
}

// sessionlessVersion is the first MCP protocol version without sessions (SEP-2575).
// Protocol versions are dates: they compare as strings.
const sessionlessVersion = "2026-07-28"

// versionRouter sends each MCP request to the handler for its protocol's era: the
// sessionless protocol to the stateless handler, anything else (no header: an
// initialize, or an older client) to the stateful one.
type versionRouter struct{ stateful, stateless http.Handler }

func (v versionRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Mcp-Protocol-Version") >= sessionlessVersion {
		v.stateless.ServeHTTP(w, r)
		return
	}
	v.stateful.ServeHTTP(w, r)
}

// inProcess is an http.RoundTripper that serves each request with the API handler
// itself, without a network hop.
type inProcess struct{ h http.Handler }

// inProcessAddr is the local address of in-process requests.
type inProcessAddr struct{}

func (inProcessAddr) Network() string { return "in-process" }
func (inProcessAddr) String() string  { return "in-process" }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	// The request arrives on no connection: it must not carry the outer request's
	// local address, which would subject the made-up Host to the TCP Host check.
	r := req.Clone(context.WithValue(req.Context(), http.LocalAddrContextKey, inProcessAddr{}))
	r.RequestURI = req.URL.RequestURI()
	r.RemoteAddr = "in-process"
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
