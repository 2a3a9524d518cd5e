package api

import "time"

// ImagePullRequest is the body of POST /images/pull.
type ImagePullRequest struct {
	// Image is the reference to pull ("alpine:3.20", "ghcr.io/acme/tool@sha256:…").
	// It must be allowed by containers.allowed_images; without a tag or digest,
	// ":latest" is pulled.
	Image string `json:"image"`
}

// PullProgress is one frame of the newline-delimited JSON stream that POST
// /images/pull answers with once the pull has started. The engine's progress
// frames carry Status (its text: "Pulling fs layer", "Downloading", "Extracting",
// "Pull complete", …) and, for a layer, ID and byte counts. The stream ends with
// exactly one final frame: Done with the image's ID and digest, or Error with a
// stable Code.
type PullProgress struct {
	Status string `json:"status"`
	// ID is the layer the frame is about (empty for frames about the whole image).
	ID string `json:"id,omitempty"`
	// Current and Total are the bytes done and expected for the layer's current
	// phase (downloading, then extracting); zero when unknown.
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`

	// Done marks the final frame of a pull that succeeded.
	Done bool `json:"done,omitempty"`
	// Image is the normalised reference that was pulled (final frame).
	Image string `json:"image,omitempty"`
	// ImageID is the engine's image ID ("sha256:…") (final frame).
	ImageID string `json:"image_id,omitempty"`
	// Digest is the repository digest ("repo@sha256:…") (final frame).
	Digest string `json:"digest,omitempty"`

	// Error ends a pull that failed, with a message safe to show and the stable
	// Code of the error catalogue (for example image_not_found).
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// Pull statuses of the frames clawbox writes itself.
const (
	PullStatusStarted = "started" // the first frame, before the engine answers
	PullStatusDone    = "done"    // the final frame of a pull that succeeded
	PullStatusError   = "error"   // the final frame of a pull that failed
)

// Image is a local image that containers.allowed_images allows.
type Image struct {
	// ID is the engine's image ID ("sha256:…").
	ID string `json:"id"`
	// RepoTags are the image's allowed tags, as the engine names them
	// ("alpine:3.20", "127.0.0.1:5000/acme/tool:v1").
	RepoTags []string `json:"repo_tags"`
	// RepoDigests are the image's allowed repository digests ("alpine@sha256:…").
	RepoDigests []string `json:"repo_digests,omitempty"`
	// Size is the image's size on disk in bytes.
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// ImageList is the body of GET /images.
type ImageList struct {
	Images []Image `json:"images"`
}
