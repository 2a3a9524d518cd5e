// Package api holds the JSON wire types of the clawbox HTTP API, shared by the server,
// the Go client and the MCP bridge. It is public and imports nothing of clawbox's
// internals; changing a JSON name here changes the wire contract.
package api
