package auth

import (
	"reflect"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Access
		wantErr string // substring of the message; "" means success
	}{
		{"pull", "repository:proj/app:pull", Access{"repository", "proj/app", []string{"pull"}}, ""},
		{"pull push", "repository:proj/app:pull,push", Access{"repository", "proj/app", []string{"pull", "push"}}, ""},
		{"star", "repository:proj/app:*", Access{"repository", "proj/app", []string{"*"}}, ""},
		{"delete", "repository:p/a/b/c:delete", Access{"repository", "p/a/b/c", []string{"delete"}}, ""},
		{"duplicate actions", "repository:p/a:pull,pull,push", Access{"repository", "p/a", []string{"pull", "push"}}, ""},
		{"unknown action is well-formed", "repository:p/a:metadata", Access{"repository", "p/a", []string{"metadata"}}, ""},
		{"plugin class", "repository(plugin):p/a:pull", Access{"repository", "p/a", []string{"pull"}}, ""},
		{"separators", "repository:p/a.b_c__d--e:pull", Access{"repository", "p/a.b_c__d--e", []string{"pull"}}, ""},
		{"single component", "repository:app:pull", Access{"repository", "app", []string{"pull"}}, ""},
		{"catalog", "registry:catalog:*", Access{"registry", "catalog", []string{"*"}}, ""},

		{"empty", "", Access{}, "type:name:actions"},
		{"no colon", "repository", Access{}, "type:name:actions"},
		{"one colon", "repository:p/a", Access{}, "type:name:actions"},
		{"empty name", "repository::pull", Access{}, "invalid repository name"},
		{"empty actions", "repository:p/a:", Access{}, "invalid action"},
		{"trailing comma", "repository:p/a:pull,", Access{}, "invalid action"},
		{"uppercase action", "repository:p/a:PULL", Access{}, "invalid action"},
		{"action with space", "repository:p/a:pu ll", Access{}, "invalid action"},
		{"uppercase name", "repository:Proj/app:pull", Access{}, "invalid repository name"},
		{"leading slash", "repository:/p/a:pull", Access{}, "invalid repository name"},
		{"trailing slash", "repository:p/a/:pull", Access{}, "invalid repository name"},
		{"double slash", "repository:p//a:pull", Access{}, "invalid repository name"},
		{"triple underscore", "repository:p/a___b:pull", Access{}, "invalid repository name"},
		{"leading separator", "repository:p/-a:pull", Access{}, "invalid repository name"},
		{"hostname", "repository:localhost:5000/p/a:pull", Access{}, "invalid repository name"},
		{"unknown type", "plugin:p/a:pull", Access{}, "unsupported resource type"},
		{"uppercase type", "Repository:p/a:pull", Access{}, "malformed resource type"},
		{"empty type", ":p/a:pull", Access{}, "malformed resource type"},
		{"unclosed class", "repository(plugin:p/a:pull", Access{}, "malformed resource type"},
		{"registry bad name", "registry:cat/alog:*", Access{}, "invalid registry resource name"},
		{"too long", "repository:" + strings.Repeat("a", maxScopeLen) + ":pull", Access{}, "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseScope(tc.in)
			if tc.wantErr != "" {
				if apperr.Code(err) != apperr.EINVALID || !strings.Contains(apperr.Message(err), tc.wantErr) {
					t.Fatalf("ParseScope(%q) = %v, %v; want EINVALID containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseScope(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseScope(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if got.String() != tc.in && !strings.Contains(tc.in, "(") && !strings.Contains(tc.in, "pull,pull") {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []Access
		wantErr bool
	}{
		{"none", nil, nil, false},
		{"empty value", []string{""}, nil, false},
		{"two params", []string{"repository:a/b:pull", "repository:c/d:push"},
			[]Access{{"repository", "a/b", []string{"pull"}}, {"repository", "c/d", []string{"push"}}}, false},
		{"space separated", []string{"repository:a/b:pull repository:c/d:push"},
			[]Access{{"repository", "a/b", []string{"pull"}}, {"repository", "c/d", []string{"push"}}}, false},
		{"merged", []string{"repository:a/b:pull", "repository:a/b:push,pull"},
			[]Access{{"repository", "a/b", []string{"pull", "push"}}}, false},
		{"type distinguishes", []string{"repository:catalog:pull registry:catalog:*"},
			[]Access{{"repository", "catalog", []string{"pull"}}, {"registry", "catalog", []string{"*"}}}, false},
		{"one bad among good", []string{"repository:a/b:pull", "repository:A:pull"}, nil, true},
		{"too many", []string{strings.Repeat("repository:a/b:pull ", maxScopes+1)}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseScopes(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("err code %s, want EINVALID", apperr.Code(err))
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFormatScopes(t *testing.T) {
	got := FormatScopes([]Access{{"repository", "p/a", []string{"pull", "push"}}, {"registry", "catalog", []string{"*"}}})
	if want := "repository:p/a:pull,push registry:catalog:*"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestAllows(t *testing.T) {
	granted := []Access{{"repository", "p/a", []string{"pull"}}, {"repository", "p/b", []string{"*"}}, {"registry", "catalog", []string{"*"}}}
	tests := []struct {
		name           string
		typ, repo, act string
		want           bool
	}{
		{"granted action", "repository", "p/a", "pull", true},
		{"other action", "repository", "p/a", "push", false},
		{"star grants push", "repository", "p/b", "push", true},
		{"star grants delete", "repository", "p/b", "delete", true},
		{"other repo", "repository", "p/c", "pull", false},
		{"prefix repo", "repository", "p", "pull", false},
		{"type must match", "registry", "p/a", "pull", false},
		{"catalog", "registry", "catalog", "*", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := allows(granted, tc.typ, tc.repo, tc.act); got != tc.want {
				t.Fatalf("allows = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:p/a:pull,push", "registry:catalog:*", "repository(plugin):a:pull",
		"repository:localhost:5000/a:pull", "a:b:c:d", "::", "repository:a:*,pull"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseScope(s)
		if err != nil {
			if apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("error code %s, want EINVALID", apperr.Code(err))
			}
			return
		}
		if a.Type != TypeRepository && a.Type != TypeRegistry {
			t.Fatalf("accepted type %q", a.Type)
		}
		if len(a.Actions) == 0 {
			t.Fatal("accepted a scope without actions")
		}
		// What parses round-trips through String.
		b, err := ParseScope(a.String())
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", a.String(), b, err, a)
		}
		if strings.ContainsAny(a.Name, " \",:") {
			t.Fatalf("name %q holds a character that would break a challenge", a.Name)
		}
	})
}
