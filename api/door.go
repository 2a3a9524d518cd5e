package api

// A sandbox reaches the network only through its egress door: an HTTP server on the
// Unix socket named by $CLAWBOX_PROXY_SOCKET, authenticated with the sandbox's token
// ($CLAWBOX_PROXY_TOKEN, or the file named by $CLAWBOX_PROXY_TOKEN_FILE) as a bearer
// token. POST /proxy takes a [ProxyRequest] and answers a [ProxyResponse]; a refusal
// is an [Error] with the gateway's code (policy_denied, rate_limited, …).

// Environment variables a sandbox finds its door by.
const (
	EnvProxySocket    = "CLAWBOX_PROXY_SOCKET"     // the door's Unix socket
	EnvProxyToken     = "CLAWBOX_PROXY_TOKEN"      // the sandbox's door token
	EnvProxyTokenFile = "CLAWBOX_PROXY_TOKEN_FILE" // a file holding the door token
)

// ProxyPath is the door's route that forwards one request.
const ProxyPath = "/proxy"

// ProxyRequest is the body of a door's POST /proxy. Method defaults to GET. Give the
// request body as Body (text) or BodyBase64 (bytes), not both. Unknown fields are
// refused.
type ProxyRequest struct {
	URL        string            `json:"url"`
	Method     string            `json:"method,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       *string           `json:"body,omitempty"`
	BodyBase64 *string           `json:"body_base64,omitempty"`
}

// ProxyResponse is the answer of a door's POST /proxy: the upstream's status, its
// headers (names in lower case, repeated values joined with ", ") and its body. A
// body that is not valid UTF-8 is sent in BodyBase64 and Body is empty. Truncated
// says the body was cut at the gateway's response limit.
type ProxyResponse struct {
	Status     int               `json:"status"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	BodyBase64 string            `json:"body_base64,omitempty"`
	Truncated  bool              `json:"truncated"`
}
