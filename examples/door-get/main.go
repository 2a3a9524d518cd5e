// Command door-get runs inside a clawbox sandbox and fetches one URL through the
// sandbox's egress door with the door package (POST /proxy on the Unix socket
// $CLAWBOX_PROXY_SOCKET, with the sandbox's token), and prints the gateway's answer
// (status, headers, body) as JSON. A refusal prints the gateway's error (its code
// first) and exits 1. Build it static to copy into an image:
//
//	CGO_ENABLED=0 go build -o door-get ./examples/door-get
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/clawbox/clawbox/door"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: door-get URL")
		os.Exit(2)
	}
	if err := get(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "door-get:", err)
		os.Exit(1)
	}
}

func get(url string) error {
	d, err := door.FromEnv()
	if err != nil {
		return err
	}
	defer d.Close()
	resp, err := d.Get(context.Background(), url)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(resp)
}
