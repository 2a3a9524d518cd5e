package api

import "time"

// Credential is one entry of the credential store as the API shows it: its binding,
// never its value. It is the element of GET /credentials and the answer to
// PUT /credentials/{name}.
type Credential struct {
	Name string `json:"name"`
	// Host is the destination the credential is bound to: an exact host
	// ("api.github.com", an IP literal) or "*.domain" (the domain and its subdomains).
	Host string `json:"host"`
	// Header is the request header set in header mode.
	Header string `json:"header"`
	// Prefix is put before the value in that header ("Bearer ", "token ", or "").
	Prefix string `json:"prefix"`
	// PathPrefix, when set, limits the binding to this path and the paths below it
	// (matched on segment boundaries).
	PathPrefix string `json:"path_prefix,omitempty"`
	// Methods, when set, limits the binding to these HTTP methods.
	Methods []string `json:"methods,omitempty"`
	// Port, when set, is the only destination port; 0 means the scheme's default.
	Port int `json:"port,omitempty"`
	// AllowHTTP lets the credential travel over plain http (never by default).
	AllowHTTP bool `json:"allow_http"`
	// Placeholder selects placeholder mode: the sandbox gets a format-preserving
	// dummy as env var <NAME>, swapped for the value on a matching request.
	Placeholder bool `json:"placeholder"`
	// PlaceholderQuery lets the gateway swap the placeholder in the URL query too.
	PlaceholderQuery bool `json:"placeholder_query,omitempty"`
	// UpdatedAt is when the entry was last created or replaced.
	UpdatedAt time.Time `json:"updated_at"`
}

// CredentialList is the body of GET /credentials.
type CredentialList struct {
	Credentials []Credential `json:"credentials"`
}

// PutCredentialRequest is the body of PUT /credentials/{name}, which creates or
// replaces the entry. The value is write-only: no API returns it.
type PutCredentialRequest struct {
	// Value is the secret. Required; it may not contain CR, LF or NUL.
	Value string `json:"value"`
	// Host is required: "api.github.com" or "*.github.com".
	Host string `json:"host"`
	// Header defaults to "Authorization".
	Header string `json:"header,omitempty"`
	// Prefix defaults to "Bearer " when absent; send "" for no prefix.
	Prefix *string `json:"prefix,omitempty"`
	// PathPrefix, Methods, Port, AllowHTTP, Placeholder and PlaceholderQuery are as
	// in [Credential]; all optional.
	PathPrefix       string   `json:"path_prefix,omitempty"`
	Methods          []string `json:"methods,omitempty"`
	Port             int      `json:"port,omitempty"`
	AllowHTTP        bool     `json:"allow_http,omitempty"`
	Placeholder      bool     `json:"placeholder,omitempty"`
	PlaceholderQuery bool     `json:"placeholder_query,omitempty"`
}

// String describes the request without its value, so that logging one by accident
// does not write the secret.
func (r PutCredentialRequest) String() string {
	return "PutCredentialRequest{host=" + r.Host + ", value=[REDACTED]}"
}

// GoString is String, for %#v.
func (r PutCredentialRequest) GoString() string { return r.String() }
