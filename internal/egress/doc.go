// Package egress is the egress gateway: the only way from a sandbox (a container or a
// WASM tool) to the network.
//
// Every outbound request, whichever door it came through, runs the same pipeline in
// [Gateway.Do]: check the caller's refusal budget, parse the method and the URL (http
// and https only), apply the sandbox's [Policy], only then decode the body, scan what
// the caller supplied as it wrote it (header names before canonicalisation, the
// method, the URL, header values, the body) for credential leaks before any DNS
// lookup, take a
// rate-limit token, inject the granted credentials, dial through a dialer that refuses
// special-purpose addresses on the address actually dialled, send without following
// redirects, cap and redact the response, and write one audit record. A container
// reaches the pipeline through its [Door], an HTTP/1.1 server on a per-sandbox Unix
// socket; WASM tools reach it through the host call.
//
// The package declares the small interfaces it needs ([Secrets], [AuditSink]); the
// server wires the real credential store and audit writer into a [Config].
package egress
