package policy

import (
	"fmt"
	"strings"
)

// namePattern is a compiled host-anchored glob over image names
// (registry/repository). The host part is matched against the reference's
// host only, so "*.corp.example" can never match a repository path such as
// "evil.example/x.corp.example". Syntax (docs/policy.md, "Globs"):
//
//	HOST[:PORT][/SEGMENT/...]
//
// HOST is a host name or IP ("[::1]" for IPv6) in which '*' matches any run
// of characters (dots included); without ":PORT" any port matches, ":*"
// says so explicitly. Without a path every repository on the host matches.
// In a path, '*' matches any run of characters within one segment and a
// whole segment "**" matches any number of segments, none included.
type namePattern struct {
	raw  string
	host string   // lower case, may hold '*'
	port string   // "" for any port
	segs []string // nil: any repository
	// specificity ranks patterns that match the same name: more literal
	// characters is more specific, a pattern without wildcards most.
	specificity int
}

// compileNamePattern parses p; the error says what is wrong with it.
func compileNamePattern(p string) (*namePattern, error) {
	if p == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	if strings.TrimSpace(p) != p {
		return nil, fmt.Errorf("pattern %q has leading or trailing spaces", p)
	}
	hostPart, pathPart, hasPath := strings.Cut(p, "/")
	np := &namePattern{raw: p}
	host, port, err := splitHostPattern(hostPart)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %v", p, err)
	}
	if !looksLikeHost(host) {
		return nil, fmt.Errorf("pattern %q must start with a registry host (for Docker Hub write docker.io/%s)", p, strings.TrimPrefix(p, "library/"))
	}
	np.host, np.port = host, port
	if hasPath {
		if pathPart == "" {
			return nil, fmt.Errorf("pattern %q ends with '/' (leave the path out to match every repository on the host, or write %s**)", p, p)
		}
		segs := strings.Split(pathPart, "/")
		for _, s := range segs {
			if err := checkPathSegment(s); err != nil {
				return nil, fmt.Errorf("pattern %q: %v", p, err)
			}
		}
		np.host, segs = canonicalPatternName(np.host, segs)
		np.segs = segs
	} else {
		np.host, _ = canonicalPatternName(np.host, nil)
	}
	wild := strings.Contains(p, "*")
	np.specificity = len(strings.ReplaceAll(np.host+np.port+strings.Join(np.segs, "/"), "*", ""))
	if !wild && hasPath {
		np.specificity += 1 << 16
	}
	return np, nil
}

// canonicalPatternName applies Docker Hub's normalisation to a pattern.
func canonicalPatternName(host string, segs []string) (string, []string) {
	switch host {
	case "index.docker.io", "registry-1.docker.io":
		host = DockerHub
	}
	if host == DockerHub && len(segs) == 1 && segs[0] != "**" {
		segs = []string{"library", segs[0]}
	}
	return host, segs
}

// splitHostPattern splits "host[:port]" and checks both.
func splitHostPattern(hp string) (host, port string, err error) {
	if hp == "" {
		return "", "", fmt.Errorf("no host")
	}
	if strings.ContainsAny(hp, "@?#\\ \t") {
		return "", "", fmt.Errorf("host %q holds a character that cannot be in a host", hp)
	}
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", fmt.Errorf("host %q: unterminated '['", hp)
		}
		host = hp[:end+1]
		rest := hp[end+1:]
		for _, r := range host[1:end] {
			if !(r == ':' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return "", "", fmt.Errorf("host %q is not an IPv6 address", host)
			}
		}
		host = strings.ToLower(host)
		if rest == "" {
			return host, "", nil
		}
		if rest[0] != ':' {
			return "", "", fmt.Errorf("host %q: unexpected %q after ']'", hp, rest)
		}
		hp = host + rest
		port = rest[1:]
	} else {
		var hasPort bool
		host, port, hasPort = strings.Cut(hp, ":")
		if hasPort && port == "" {
			return "", "", fmt.Errorf("host %q: empty port", hp)
		}
		if host == "" {
			return "", "", fmt.Errorf("host %q: no host name", hp)
		}
		if strings.Contains(host, "**") {
			return "", "", fmt.Errorf("host %q: '**' is for paths; '*' already matches any run of characters in a host", hp)
		}
		for _, r := range host {
			if !(r == '.' || r == '-' || r == '*' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return "", "", fmt.Errorf("host %q holds %q, not allowed in a host name", host, r)
			}
		}
		host = strings.ToLower(host)
	}
	switch {
	case port == "" || port == "*":
		port = ""
	default:
		if len(port) > 5 {
			return "", "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		n := 0
		for _, r := range port {
			if r < '0' || r > '9' {
				return "", "", fmt.Errorf("port %q is not a number from 1 to 65535 (or *)", port)
			}
			n = n*10 + int(r-'0')
		}
		if n < 1 || n > 65535 {
			return "", "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	return host, port, nil
}

// looksLikeHost applies Docker's rule for the first component of a name:
// a host has a '.' or ':' (or is localhost); '*' and IPv6 count too.
func looksLikeHost(h string) bool {
	return h == "localhost" || strings.ContainsAny(h, ".:*[")
}

// checkPathSegment checks one path segment of a pattern.
func checkPathSegment(s string) error {
	if s == "" {
		return fmt.Errorf("empty path segment (\"//\")")
	}
	if s == "**" {
		return nil
	}
	if strings.Contains(s, "**") {
		return fmt.Errorf("segment %q: '**' must be a whole segment", s)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("segment %q is not a repository name component", s)
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '-' || r == '*' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			if r >= 'A' && r <= 'Z' {
				return fmt.Errorf("segment %q: repository names are lower case", s)
			}
			return fmt.Errorf("segment %q holds %q, not allowed in a repository name", s, r)
		}
	}
	return nil
}

// subject is an image name split for matching, computed once per
// evaluation.
type subject struct {
	host string // lower case, no port
	port string // "" when none
	segs []string
}

// newSubject splits img's name. img comes normalised from ParseImage or is
// checked by Input.validate.
func newSubject(img *Image) subject {
	host, port := splitHostPort(img.Registry)
	return subject{host: host, port: port, segs: strings.Split(img.Repository, "/")}
}

// splitHostPort splits "host:port" and "[v6]:port"; port is "" when none.
func splitHostPort(reg string) (host, port string) {
	if strings.HasPrefix(reg, "[") {
		if end := strings.IndexByte(reg, ']'); end >= 0 {
			return reg[:end+1], strings.TrimPrefix(reg[end+1:], ":")
		}
		return reg, ""
	}
	host, port, _ = strings.Cut(reg, ":")
	return host, port
}

// match reports whether the pattern matches the name.
func (np *namePattern) match(s *subject) bool {
	if np.port != "" && np.port != s.port {
		return false
	}
	if !wildMatch(np.host, s.host) {
		return false
	}
	if np.segs == nil {
		return true
	}
	return matchSegments(np.segs, s.segs)
}

// matchSegments matches pattern segments ("**" for any number of segments,
// '*' within one) against name segments. It is the classic greedy wildcard
// match with backtracking to the last "**": linear in practice, quadratic at
// worst, never exponential.
func matchSegments(pat, subj []string) bool {
	p, s := 0, 0
	starP, starS := -1, 0
	for s < len(subj) {
		switch {
		case p < len(pat) && pat[p] == "**":
			starP, starS = p, s
			p++
		case p < len(pat) && wildMatch(pat[p], subj[s]):
			p++
			s++
		case starP >= 0:
			p = starP + 1
			starS++
			s = starS
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == "**" {
		p++
	}
	return p == len(pat)
}

// wildMatch matches a glob in which '*' matches any run of characters
// (empty included) against s, greedily with backtracking to the last '*'.
func wildMatch(pat, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		switch {
		case p < len(pat) && pat[p] == '*':
			starP, starI = p, i
			p++
		case p < len(pat) && pat[p] == s[i]:
			p++
			i++
		case starP >= 0:
			p = starP + 1
			starI++
			i = starI
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}
