package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		existing  []string
		password  string
		wantGen   bool
		wantAdmin bool // an admin user exists afterwards whose password is the given or generated one
	}{
		{"empty store, given password", nil, "s3cret-from-env", false, true},
		{"empty store, generated password", nil, "", true, true},
		{"users exist", []string{"alice"}, "s3cret-from-env", false, false},
		{"admin exists", []string{"admin"}, "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			for _, n := range tc.existing {
				_ = st.CreateUser(ctx, &store.User{Name: n, PasswordHash: "x"})
			}
			gen, err := EnsureAdmin(ctx, st, tc.password, nil)
			if err != nil {
				t.Fatal(err)
			}
			if (gen != "") != tc.wantGen {
				t.Fatalf("generated %q, want generated=%v", gen, tc.wantGen)
			}
			if tc.wantGen && len(gen) < 20 {
				t.Fatalf("generated password %q too short", gen)
			}
			u, err := st.User(ctx, AdminUser)
			if !tc.wantAdmin {
				if err == nil && u.PasswordHash != "x" {
					t.Fatal("existing users were not left alone")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pw := tc.password
			if gen != "" {
				pw = gen
			}
			if !u.Admin || u.Disabled {
				t.Fatalf("admin user %+v", u)
			}
			if ok, _, err := VerifyPassword(u.PasswordHash, pw, DefaultPasswordParams()); !ok || err != nil {
				t.Fatalf("admin password does not verify: %v %v", ok, err)
			}
		})
	}
}

func TestEnsureAdminGeneratesDifferentPasswords(t *testing.T) {
	a, _ := EnsureAdmin(context.Background(), newMemStore(), "", nil)
	b, _ := EnsureAdmin(context.Background(), newMemStore(), "", nil)
	if a == "" || a == b {
		t.Fatalf("generated %q and %q", a, b)
	}
}

// racingStore lists no users but finds the name taken on create, as when
// another replica creates the admin at the same moment.
type racingStore struct{ *memStore }

func (racingStore) Users(context.Context, store.Page) ([]store.User, error) { return nil, nil }
func (racingStore) CreateUser(context.Context, *store.User) error {
	return apperr.Errorf(apperr.ECONFLICT, "user admin exists")
}

func TestEnsureAdminRace(t *testing.T) {
	gen, err := EnsureAdmin(context.Background(), racingStore{newMemStore()}, "", nil)
	if err != nil || gen != "" {
		t.Fatalf("EnsureAdmin = %q, %v; want nothing created and no error", gen, err)
	}
}

func TestEnsureAdminStoreDown(t *testing.T) {
	st := newMemStore()
	st.fail = errors.New("disk full")
	if _, err := EnsureAdmin(context.Background(), st, "", nil); apperr.Code(err) != apperr.EUNAVAILABLE {
		t.Fatalf("error %v, want EUNAVAILABLE", err)
	}
}
