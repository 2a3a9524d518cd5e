package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

// Find the server the way the clawbox CLI does (CLAWBOX_HOST, CLAWBOX_PORT,
// CLAWBOX_AUTH_TOKEN, then ~/.clawbox/config.toml and its token file).
func ExampleFromEnv() {
	c, err := client.FromEnv()
	if err != nil {
		log.Fatal(err) // names where it looked for the token
	}
	h, err := c.Health(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Status)
}

// Spawn a sandbox and wait, at most five minutes, until it has finished.
func ExampleClient_Wait() {
	c, err := client.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := c.Spawn(ctx, api.ContainerSpawnRequest{Task: "count", Command: []string{"sh", "-c", "seq 3"}})
	if err != nil {
		log.Fatal(err)
	}
	info, err = c.Wait(ctx, info.ContainerID)
	if err != nil {
		log.Fatal(err)
	}
	if info.ExitCode != nil {
		fmt.Println(info.Status, *info.ExitCode)
	}
}
