package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/clawbox/clawbox/api"
	"github.com/clawbox/clawbox/client"
)

// Pull an allowed image, printing each layer's progress and the image ID at the end.
func ExampleClient_PullImage() {
	c, err := client.New("http://127.0.0.1:9800", client.Options{Token: "…"})
	if err != nil {
		log.Fatal(err)
	}
	err = c.PullImage(context.Background(), "alpine:3.20", func(p api.PullProgress) {
		switch {
		case p.Done:
			fmt.Println("pulled", p.Image, p.ImageID)
		case p.Total > 0:
			fmt.Printf("%s %s %d/%d\n", p.ID, p.Status, p.Current, p.Total)
		}
	})
	if e, ok := api.AsError(err); ok && e.Code == api.CodeImageNotAllowed {
		log.Fatal("add the image to containers.allowed_images first")
	} else if err != nil {
		log.Fatal(err)
	}
}
