package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/customs-dev/customs/internal/apperr"
)

// cliConfig is what `customs login` keeps for later commands, in
// $XDG_CONFIG_HOME/customs/config.json (mode 0600). It holds a refresh token
// per server, never a password: the token service issues it at login, it is
// exchanged for short-lived API tokens, and it dies when the password
// changes or the account is disabled.
type cliConfig struct {
	// Current is the server commands use when --server and CUSTOMS_SERVER
	// are not given: the last one logged in to.
	Current string `json:"current,omitempty"`
	// Servers maps server URLs to their credentials.
	Servers map[string]serverCreds `json:"servers,omitempty"`
}

// serverCreds are the stored credentials for one server.
type serverCreds struct {
	Username     string `json:"username"`
	RefreshToken string `json:"refreshToken"`
}

// defaultServer is the server of commands when nothing names one.
const defaultServer = "http://localhost:5000"

// cliConfigPath returns the path of the CLI configuration file.
func cliConfigPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", apperr.Errorf(apperr.EINVALID, "cannot find the configuration directory (set XDG_CONFIG_HOME or HOME): %v", err)
	}
	return filepath.Join(dir, "customs", "config.json"), nil
}

// loadCLIConfig reads the CLI configuration; a missing file is an empty one.
func loadCLIConfig() (*cliConfig, error) {
	path, err := cliConfigPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &cliConfig{Servers: map[string]serverCreds{}}, nil
	}
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "reading %s: %v", path, err)
	}
	c := &cliConfig{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "%s is not valid JSON (%v); remove it and log in again", path, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]serverCreds{}
	}
	return c, nil
}

// save writes the configuration atomically, readable by its owner only.
func (c *cliConfig) save() error {
	path, err := cliConfigPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return apperr.Errorf(apperr.EINVALID, "creating %s: %v", filepath.Dir(path), err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return apperr.Errorf(apperr.EINVALID, "writing %s: %v", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err == nil {
		_, err = f.Write(append(b, '\n'))
		if err == nil {
			err = f.Close()
		}
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
		if err == nil {
			return nil
		}
	}
	f.Close()
	return apperr.Errorf(apperr.EINVALID, "writing %s: %v", path, err)
}

// normalizeServer turns what a user typed ("localhost:5000",
// "https://reg.example.com/") into a base URL: without a scheme, loopback
// hosts get http and others https (as registry clients assume).
func normalizeServer(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if s == "" || strings.Contains(s, "://") {
		return s
	}
	host := s
	if h, _, ok := strings.Cut(s, "/"); ok {
		host = h
	}
	hostname := host
	if i := strings.LastIndex(host, ":"); i >= 0 && !strings.HasSuffix(host, "]") {
		hostname = host[:i]
	}
	switch strings.Trim(hostname, "[]") {
	case "localhost", "127.0.0.1", "::1":
		return "http://" + s
	}
	return "https://" + s
}

// readSecret gets a password or secret for prompt: the first line of stdin
// when fromStdin, else the environment variable env when set, else a
// prompt without echo when stdin is a terminal.
func readSecret(stdin io.Reader, stderr io.Writer, fromStdin bool, env, prompt string) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", apperr.Errorf(apperr.EINVALID, "reading the password from stdin: nothing there")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if v := os.Getenv(env); env != "" && v != "" {
		return v, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", apperr.Errorf(apperr.EINVALID, "no password: use --password-stdin or set %s", env)
	}
	fmt.Fprint(stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", apperr.Errorf(apperr.EINVALID, "reading the password: %v", err)
	}
	return string(b), nil
}
