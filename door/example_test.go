package door_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/containerd/errdefs"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/door"
)

// Inside a sandbox: fetch a URL through the door and tell a policy refusal apart.
func ExampleClient_Get() {
	d, err := door.FromEnv()
	if err != nil {
		log.Fatal(err) // not in a sandbox with a door
	}
	defer d.Close()
	resp, err := d.Get(context.Background(), "https://api.example.com/v1/status")
	var e *api.Error
	switch {
	case errors.Is(err, errdefs.ErrPermissionDenied):
		log.Fatal("not allowed by the sandbox's policy: ", err)
	case errors.As(err, &e):
		log.Fatalf("refused: %s (%s)", e.Message, e.Code)
	case err != nil:
		log.Fatal(err)
	}
	body, err := door.Body(resp)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status, len(body))
}
