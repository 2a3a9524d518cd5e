// Package readme holds the test that runs the README's quickstart: the shell blocks
// marked <!-- quickstart:... --> are extracted from README.md and run, in order,
// against a real server, Docker daemon and loopback upstream, so the document a new
// user follows cannot drift from what clawbox does.
package readme
