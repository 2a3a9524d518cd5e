package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

// Run a WASM tool and tell the error classes apart.
func ExampleClient_Execute() {
	c, err := client.New("http://127.0.0.1:9800", client.Options{Token: "…the token from ~/.clawbox/token…"})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Execute(context.Background(), api.ExecuteRequest{Tool: "echo", Params: json.RawMessage(`{"hello":"world"}`)})
	switch {
	case errors.Is(err, client.ErrUnreachable):
		log.Fatal("start the server: clawbox serve")
	case errors.Is(err, errdefs.ErrNotFound):
		log.Fatal("no such tool: clawbox tools list")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(string(res.Output))
}

// Spawn a container sandbox, stream its output, and read its final status.
func ExampleClient_Spawn() {
	c, err := client.New("http://127.0.0.1:9800", client.Options{Token: "…"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{
		Task:    "say hello",
		Image:   "alpine",
		Command: []string{"echo", "hello"},
		Capabilities: &api.ContainerCapabilities{
			Network: &api.ContainerNetwork{Allowlist: []string{"api.github.com"}},
		},
	})
	if e, ok := api.AsError(err); ok && e.Code == api.CodeImageNotFound {
		log.Fatal("pull it first: clawbox image pull alpine")
	} else if err != nil {
		log.Fatal(err)
	}
	err = c.FollowLogs(ctx, info.ContainerID, func(f api.LogFrame) error {
		switch f.Stream {
		case "stdout", "stderr":
			fmt.Print(f.Data)
		case "status":
			fmt.Println("finished:", f.Status)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Follow the audit log: every egress decision, as it happens.
func ExampleClient_AuditStream() {
	c, err := client.New("http://127.0.0.1:9800", client.Options{Token: "…"})
	if err != nil {
		log.Fatal(err)
	}
	err = c.AuditStream(context.Background(), client.AuditQuery{Decision: "blocked"}, func(r api.AuditRecord) error {
		fmt.Println(r.Time, r.ContainerID, r.Method, r.URL, r.Reason)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
