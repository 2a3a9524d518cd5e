package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

// Run commands one after another in a running sandbox and read their output.
func ExampleClient_Exec() {
	c, err := client.New("http://127.0.0.1:9800", client.Options{Token: "…"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Exec(ctx, "clawbox-…", api.ExecRequest{
		Cmd:       []string{"python3", "-c", "import sys; print(sys.version)"},
		Workdir:   "/workspace",
		TimeoutMS: 30_000,
	})
	if err != nil {
		log.Fatal(err) // the exec could not run (404, 409 not running, 400 bad request, 503)
	}
	// A failing command is a result, not an error.
	fmt.Println(res.ExitCode, res.EndedBy, res.Stdout)
}

// Stream a long command's output as it comes.
func ExampleClient_ExecStream() {
	c, err := client.New("http://127.0.0.1:9800", client.Options{Token: "…"})
	if err != nil {
		log.Fatal(err)
	}
	exit, err := c.ExecStream(context.Background(), "clawbox-…",
		api.ExecRequest{Cmd: []string{"sh", "-c", "for i in 1 2 3; do echo $i; sleep 1; done"}}, os.Stdout, os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	os.Exit(exit.ExitCode)
}

// Open a shell on a terminal and drive it.
func ExampleClient_ExecInteractive() {
	c, err := client.New("http://127.0.0.1:9800", client.Options{Token: "…"})
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.ExecInteractive(context.Background(), "clawbox-…",
		api.ExecRequest{Cmd: []string{"sh"}, TTY: true, Rows: 24, Cols: 80}, os.Stdout, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	s.Write([]byte("echo hello; exit 3\n"))
	s.Resize(40, 120)
	exit, err := s.Wait()
	fmt.Println(exit.ExitCode, err)
}

// Move files in and out of a sandbox.
func ExampleClient_WriteFile() {
	c, err := client.New("http://127.0.0.1:9800", client.Options{Token: "…"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.WriteFile(ctx, "clawbox-…", "/workspace/main.py", strings.NewReader("print('hi')\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	if _, err := c.ReadFile(ctx, "clawbox-…", "/workspace/main.py", os.Stdout); err != nil {
		log.Fatal(err)
	}
	list, err := c.ListFiles(ctx, "clawbox-…", "/workspace")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range list.Entries {
		fmt.Println(e.Name, e.Size, e.IsDir)
	}
}
