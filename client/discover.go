package client

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Environment variables FromEnv reads, as the clawbox CLI does.
const (
	EnvHome      = "CLAWBOX_HOME"       // the clawbox directory (default ~/.clawbox)
	EnvHost      = "CLAWBOX_HOST"       // server.host
	EnvPort      = "CLAWBOX_PORT"       // server.port
	EnvAuthToken = "CLAWBOX_AUTH_TOKEN" // server.auth_token
)

// Defaults of the server's address, as in the server's config.
const (
	DefaultHost = "127.0.0.1"
	DefaultPort = 9800
)

// EnvOptions configure FromEnvOptions. Zero values take defaults.
type EnvOptions struct {
	// Lookup reads an environment variable; nil means os.LookupEnv.
	Lookup func(key string) (string, bool)
	// ConfigFile is the config file; "" means config.toml in $CLAWBOX_HOME or
	// ~/.clawbox. A named file must exist.
	ConfigFile string
	// Client options (Token is overridden by what FromEnv finds when empty).
	Options
}

// FromEnv returns a client of the server the clawbox CLI would talk to: host and
// port from $CLAWBOX_HOST and $CLAWBOX_PORT, else [server] host and port of
// config.toml in $CLAWBOX_HOME (default ~/.clawbox), else 127.0.0.1:9800; the token
// from $CLAWBOX_AUTH_TOKEN, else server.auth_token, else the file named by
// server.auth_token_file (default "token" in the clawbox directory). A missing
// config file means the defaults. No token found is an error naming where it looked.
func FromEnv() (*Client, error) { return FromEnvOptions(EnvOptions{}) }

// FromEnvOptions is FromEnv with options.
func FromEnvOptions(o EnvOptions) (*Client, error) {
	lookup := o.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	file, explicit := o.ConfigFile, o.ConfigFile != ""
	if !explicit {
		dir, err := homeDir(lookup)
		if err != nil {
			return nil, err
		}
		file = filepath.Join(dir, "config.toml")
	}
	var cfg struct {
		Server struct {
			Host          string `toml:"host"`
			Port          int    `toml:"port"`
			AuthToken     string `toml:"auth_token"`
			AuthTokenFile string `toml:"auth_token_file"`
		} `toml:"server"`
	}
	s := &cfg.Server
	s.Host, s.Port, s.AuthTokenFile = DefaultHost, DefaultPort, "token"
	if _, err := toml.DecodeFile(file, &cfg); err != nil {
		if explicit || !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("client: config %s: %w", file, err)
		}
	}
	if v, ok := lookup(EnvHost); ok && v != "" {
		s.Host = v
	}
	if v, ok := lookup(EnvPort); ok && v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("client: %s=%q: not a port number", EnvPort, v)
		}
		s.Port = p
	}
	token := o.Token
	if token == "" {
		if v, ok := lookup(EnvAuthToken); ok && v != "" {
			token = v
		} else if s.AuthToken != "" {
			token = s.AuthToken
		} else {
			p, err := expandHome(s.AuthTokenFile, lookup)
			if err != nil {
				return nil, err
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(file), p)
			}
			t, err := ReadTokenFile(p)
			if err != nil {
				return nil, fmt.Errorf("client: no API token: looked in %s, server.auth_token and server.auth_token_file of %s: %w", EnvAuthToken, file, err)
			}
			token = t
		}
	}
	opts := o.Options
	opts.Token = token
	return New(ServerURL(s.Host, s.Port), opts)
}

// ServerURL returns the http URL a client uses for a server bound to host:port; a
// wildcard bind address ("", 0.0.0.0, ::) is reached on the loopback address.
func ServerURL(host string, port int) string {
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// ReadTokenFile reads an API token file (server.auth_token_file): one token,
// surrounding white space ignored.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("server.auth_token_file: %s does not exist: run `clawbox init` or set %s", path, EnvAuthToken)
		}
		return "", fmt.Errorf("server.auth_token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("server.auth_token_file: %s is empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("server.auth_token_file: %s must hold a single token", path)
	}
	return tok, nil
}

func homeDir(lookup func(string) (string, bool)) (string, error) {
	if d, ok := lookup(EnvHome); ok && d != "" {
		return expandHome(d, lookup)
	}
	h, err := userHome(lookup)
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".clawbox"), nil
}

func userHome(lookup func(string) (string, bool)) (string, error) {
	if h, ok := lookup("HOME"); ok && h != "" {
		return h, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("client: cannot find the home directory: %w (set %s)", err, EnvHome)
	}
	return h, nil
}

func expandHome(p string, lookup func(string) (string, bool)) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	h, err := userHome(lookup)
	if err != nil {
		return "", err
	}
	return filepath.Join(h, strings.TrimPrefix(p, "~")), nil
}
