package auth

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
)

// Limits on scope input, so that a request cannot make the token service
// build arbitrarily large tokens.
const (
	maxScopeLen = 4096 // bytes in one resource scope
	maxScopes   = 64   // resource scopes in one request
)

var (
	// repoNameRE is the distribution-spec repository name grammar.
	repoNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	// typeRE is a resource type with an optional class: "repository(plugin)".
	typeRE = regexp.MustCompile(`^([a-z0-9]+)(?:\([a-z0-9]+\))?$`)
	// registryNameRE is the name of a registry-wide resource, e.g. "catalog".
	registryNameRE = regexp.MustCompile(`^[a-z0-9]+$`)
)

// String returns a in the Docker token scope syntax, e.g.
// "repository:proj/app:pull,push".
func (a Access) String() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// FormatScopes returns accesses as one space-separated scope string, the
// form used in a WWW-Authenticate challenge and an OAuth2 "scope" field.
func FormatScopes(accesses []Access) string {
	parts := make([]string, len(accesses))
	for i, a := range accesses {
		parts[i] = a.String()
	}
	return strings.Join(parts, " ")
}

// ParseScope parses one resource scope, "type:name:action[,action...]", where
// type is "repository" (optionally with a class, "repository(plugin)", which is
// dropped), "registry" or "api", name is a distribution-spec repository name for
// repositories, and each action is "*" or lowercase letters. Duplicate
// actions are removed. Any other input is an EINVALID error naming the
// problem.
func ParseScope(s string) (Access, error) {
	if len(s) > maxScopeLen {
		return Access{}, scopeError(s, "too long")
	}
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Access{}, scopeError(s, `want "type:name:actions"`)
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return Access{}, scopeError(s, `want "type:name:actions"`)
	}
	name, actionList := rest[:i], rest[i+1:]

	m := typeRE.FindStringSubmatch(typ)
	if m == nil {
		return Access{}, scopeError(s, "malformed resource type")
	}
	a := Access{Type: m[1], Name: name}
	switch a.Type {
	case TypeRepository:
		if !repoNameRE.MatchString(name) {
			return Access{}, scopeError(s, "invalid repository name")
		}
	case TypeRegistry, TypeAPI:
		if !registryNameRE.MatchString(name) {
			return Access{}, scopeError(s, "invalid "+a.Type+" resource name")
		}
	default:
		return Access{}, scopeError(s, "unsupported resource type "+quote(a.Type))
	}

	for act := range strings.SplitSeq(actionList, ",") {
		if !validAction(act) {
			return Access{}, scopeError(s, "invalid action "+quote(act))
		}
		if !slices.Contains(a.Actions, act) {
			a.Actions = append(a.Actions, act)
		}
	}
	return a, nil
}

// ParseScopes parses the values of a request's "scope" parameters, each of
// which may hold several space-separated resource scopes. Scopes naming the
// same resource are merged, in first-seen order. Empty values are ignored.
func ParseScopes(values []string) ([]Access, error) {
	var out []Access
	n := 0
	for _, v := range values {
		for _, s := range strings.Fields(v) {
			if n++; n > maxScopes {
				return nil, apperr.Errorf(apperr.EINVALID, "too many scopes (at most %d)", maxScopes)
			}
			a, err := ParseScope(s)
			if err != nil {
				return nil, err
			}
			out = mergeAccess(out, a)
		}
	}
	return out, nil
}

// mergeAccess adds a to list, merging its actions into an existing entry for
// the same resource.
func mergeAccess(list []Access, a Access) []Access {
	for i := range list {
		if list[i].Type == a.Type && list[i].Name == a.Name {
			for _, act := range a.Actions {
				if !slices.Contains(list[i].Actions, act) {
					list[i].Actions = append(list[i].Actions, act)
				}
			}
			return list
		}
	}
	return append(list, a)
}

func validAction(act string) bool {
	if act == ActionAll {
		return true
	}
	if act == "" {
		return false
	}
	for i := 0; i < len(act); i++ {
		if act[i] < 'a' || act[i] > 'z' {
			return false
		}
	}
	return true
}

// allows reports whether the granted list permits action on the resource.
func allows(granted []Access, typ, name, action string) bool {
	for _, g := range granted {
		if g.Type == typ && g.Name == name &&
			(slices.Contains(g.Actions, action) || slices.Contains(g.Actions, ActionAll)) {
			return true
		}
	}
	return false
}

func scopeError(s, why string) *apperr.Error {
	return apperr.Errorf(apperr.EINVALID, "invalid scope %s: %s", quote(s), why)
}

// quote quotes s for a message, cutting it short if long.
func quote(s string) string {
	const max = 128
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
