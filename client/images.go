package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/clawbox/clawbox/api"
)

// PullImage pulls an image that the server's containers.allowed_images allows,
// calling progress (if not nil) with every frame of the stream, the final one
// included: the last frame of a pull that succeeded has Done set, with the image's
// ImageID and Digest. A refused or failed pull is an *api.Error: image_not_allowed (403) before
// anything is pulled, or the code of the stream's error frame (image_not_found,
// upstream_error, …). A stream that ends without a final frame is an error too.
func (c *Client) PullImage(ctx context.Context, ref string, progress func(api.PullProgress)) error {
	sc := *c.hc
	sc.Timeout = 0 // a pull lasts as long as it takes; ctx bounds it
	s := &Client{base: c.base, token: c.token, hc: &sc}
	resp, err := s.send(ctx, http.MethodPost, "/images/pull", api.ImagePullRequest{Image: ref})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	scan := bufio.NewScanner(resp.Body)
	scan.Buffer(make([]byte, 64<<10), 1<<20)
	for scan.Scan() {
		var f api.PullProgress
		if err := json.Unmarshal(scan.Bytes(), &f); err != nil {
			return fmt.Errorf("decode pull progress: %w", err)
		}
		if progress != nil {
			progress(f)
		}
		switch {
		case f.Error != "":
			return &api.Error{Code: f.Code, Message: f.Error}
		case f.Done:
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := scan.Err(); err != nil {
		return &UnreachableError{URL: c.base.String(), Err: err}
	}
	return &UnreachableError{URL: c.base.String(), Err: errors.New("the pull stream ended before its final frame")}
}

// Images lists the local images that the server's containers.allowed_images allows.
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var out api.ImageList
	if err := c.do(ctx, http.MethodGet, "/images", nil, &out); err != nil {
		return nil, err
	}
	return out.Images, nil
}
