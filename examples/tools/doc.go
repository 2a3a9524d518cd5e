// Package tools holds clawbox's example WASM tools, each a main package written with
// the toolkit: echo, hash, json_fmt, http_request and web_fetch. Each directory has a
// manifest.json beside its main.go. Build one with `clawbox build examples/tools/echo`;
// the built tools are embedded in internal/wasm/exampletools so `clawbox init` can
// install them without a Go toolchain.
package tools
