package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/customs-dev/customs/internal/apperr"
)

// miniRegistry serves /v2/, tags lists and the catalog behind the Guard, with
// just enough error mapping for a real client to run the token flow against
// the service. (The registry proper maps errors in internal/registry.)
func miniRegistry(svc *Service) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/service/token", svc.TokenHandler())
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		fail := func(err error, scopes ...Access) {
			status, code := http.StatusForbidden, "DENIED"
			if apperr.Code(err) == apperr.EUNAUTHORIZED {
				status, code = http.StatusUnauthorized, "UNAUTHORIZED"
				if d := apperr.Detail(err); d != "" {
					code = d
				}
				w.Header().Set("WWW-Authenticate", svc.Challenge(r, scopes...))
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": apperr.Message(err)}}})
		}
		p, err := svc.Authenticate(r)
		if err != nil {
			fail(err)
			return
		}
		var a Access
		var body any
		switch {
		case r.URL.Path == "/v2/":
			if p.Kind == KindAnonymous && !p.Token {
				fail(apperr.Errorf(apperr.EUNAUTHORIZED, msgAuthRequired))
				return
			}
			body = struct{}{}
		case r.URL.Path == "/v2/_catalog":
			a = Access{Type: TypeRegistry, Name: "catalog", Actions: []string{ActionAll}}
			body = map[string]any{"repositories": []string{"priv/app", "pub/app"}}
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			repo := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v2/"), "/tags/list")
			a = Access{Type: TypeRepository, Name: repo, Actions: []string{ActionPull}}
			body = map[string]any{"name": repo, "tags": []string{"v1"}}
		default:
			http.NotFound(w, r)
			return
		}
		if a.Type != "" {
			if err := svc.Authorize(r.Context(), p, a); err != nil {
				fail(err, a)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
	return mux
}

// TestGoContainerRegistryClient runs go-containerregistry's client (what
// crane uses) through the challenge, token and bearer flow.
func TestGoContainerRegistryClient(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(miniRegistry(f.svc))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	list := func(repo string, auth authn.Authenticator) ([]string, error) {
		ref, err := name.NewRepository(host+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return remote.List(ref, remote.WithAuth(auth), remote.WithContext(ctx))
	}
	tests := []struct {
		name    string
		repo    string
		auth    authn.Authenticator
		wantErr string
	}{
		{"anonymous public", "pub/app", authn.Anonymous, ""},
		{"anonymous private", "priv/app", authn.Anonymous, "UNAUTHORIZED"},
		{"user public", "pub/app", &authn.Basic{Username: "alice", Password: alicePW}, ""},
		{"user private", "priv/app", &authn.Basic{Username: "alice", Password: alicePW}, "DENIED"},
		{"admin private", "priv/app", &authn.Basic{Username: "admin", Password: adminPW}, ""},
		{"wrong password", "pub/app", &authn.Basic{Username: "admin", Password: "nope"}, "UNAUTHORIZED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tags, err := list(tc.repo, tc.auth)
			if tc.wantErr != "" {
				t.Logf("client error: %v", err)
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("List = %v, %v; want an error containing %s", tags, err, tc.wantErr)
				}
				return
			}
			if err != nil || len(tags) != 1 || tags[0] != "v1" {
				t.Fatalf("List = %v, %v", tags, err)
			}
		})
	}

	t.Run("identity token (refresh token) flow", func(t *testing.T) {
		_, reply := doToken(t, f, newRequest("GET", "/service/token?service=customs&offline_token=true", basic("admin", adminPW)))
		auth := authn.FromConfig(authn.AuthConfig{IdentityToken: reply.RefreshToken})
		if tags, err := list("priv/app", auth); err != nil || len(tags) != 1 {
			t.Fatalf("List with identity token = %v, %v", tags, err)
		}
		bad := authn.FromConfig(authn.AuthConfig{IdentityToken: "not-a-token"})
		if _, err := list("priv/app", bad); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
			t.Fatalf("List with a bad identity token: %v", err)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		reg, _ := name.NewRegistry(host, name.Insecure)
		repos, err := remote.CatalogPage(reg, "", 10, remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPW}))
		if err != nil || len(repos) != 2 {
			t.Fatalf("admin catalog = %v, %v", repos, err)
		}
		if _, err := remote.CatalogPage(reg, "", 10, remote.WithAuth(&authn.Basic{Username: "alice", Password: alicePW})); err == nil {
			t.Fatal("user read the catalog")
		}
	})
}
