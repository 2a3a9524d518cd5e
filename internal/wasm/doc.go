// Package wasm runs clawbox's WASM tools: a wazero runtime with an on-disk
// compilation cache, one compiled module per tool, a fresh instance per call, the
// clawbox host ABI, and a registry that loads tools from a directory, watches it and
// persists registered manifests.
//
// # Isolation
//
// A call gets WASI preview 1 with stdin (the params JSON), stdout (the result JSON)
// and stderr only: no filesystem, no environment, no arguments, no sockets. Clocks
// and randomness are real. Per call the engine enforces a wall-time limit (the
// context's deadline; wazero closes the module when it passes, so a spinning guest
// stops), a linear-memory limit (a memory.grow beyond it fails), a stdout cap
// (exceeding it fails the call with output_too_large rather than cutting the output),
// a stderr cap (the tail is kept for error details) and a host-call count. wazero has
// no fuel: ExecutionMetadata.FuelConsumed is always 0.
//
// # Two kinds of module
//
// A command module exports _start (the original ABI): each call instantiates the
// compiled module and runs _start. A reactor module exports _initialize and
// clawbox_run (a toolkit tool built with -buildmode=c-shared): the Go runtime's
// start-up runs once, on the tool's first call, and the state it leaves (the
// linear memory and the mutable globals) is kept as the tool's snapshot; every
// call then gets a new instance (new tables, WASI state and segments) whose memory
// and globals are set to the snapshot instead of running _initialize again (see
// snapshot.go). A per-tool pool keeps a few such instances ready, restored in the
// background once the previous call is answered (DeferWork); a call takes one,
// sets its stdin and stdout, calls clawbox_run (its i32 result is the exit status)
// and closes it. Instances are never reused; a closed instance's memory may back a
// later one, overwritten with the snapshot and zeroed beyond it before the guest
// runs. The snapshot is taken before any call ran and host calls are refused
// during _initialize, so nothing of one call reaches another. What every call
// does share is what _initialize computed: a Go tool's runtime seeds (map hash
// seeds, the unseeded math/rand sequences) are the same in every call of one
// snapshot; crypto/rand asks the host for every read and differs. The pool is
// emptied and the snapshot dropped after an idle time without a call.
//
// # Memory at rest
//
// The registry compiles modules with CompileLazy: checked and compiled at load
// (filling the compilation cache), then released, and decoded again from the file
// on the first call, before the call's time limit starts. A loaded tool that is not
// called holds no decoded module, no machine code and no instance.
//
// # Host ABI
//
// The import module "clawbox" provides:
//
//	host_call(req_ptr, req_len, resp_ptr, resp_cap i32) i32
//	host_call_result(resp_ptr, resp_cap i32) i32
//
// The request is JSON {"method": string, "params": any}; the reply is {"ok": any} or
// {"error": string, "code"?: string}. host_call returns the reply's length when it
// fits in resp_cap. It returns -1 when the guest exports no memory or a region is out
// of bounds (the request is then not performed). When the reply does not fit it
// returns -N, N >= 2 being the reply's length (no reply is ever shorter than 2 bytes,
// so -1 stays unambiguous), and keeps the reply: host_call_result copies it into a
// buffer of at least N bytes and returns N (or -N again if the buffer is still too
// small, -1 if there is no pending reply or the region is invalid). Tools written for
// the original ABI, which treated any negative result as an error, keep working; they
// now get an error instead of a silently truncated reply.
//
// Methods: "log" {level, message} appends to the call's logs (capped); and
// "http_request" {url, method, headers, body | body_base64} goes through the
// HTTPDoer given to the engine (the egress gateway) and answers
// {status, headers, body, body_base64?, truncated}. Every host_call counts towards
// the limit, including malformed ones; calls past it get an error reply.
package wasm
