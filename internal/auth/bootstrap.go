package auth

import (
	"context"
	"crypto/rand"
	"log/slog"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// AdminUser is the name of the system administrator created on first start.
const AdminUser = "admin"

// EnsureAdmin creates the system administrator "admin" if no user exists
// yet, with password, or with a random password if password is "". It
// returns the generated password (to be shown once) or "" if it used the
// given one or created nothing. Another replica creating the user
// concurrently is not an error.
func EnsureAdmin(ctx context.Context, users store.UserStore, password string, logger *slog.Logger) (generated string, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	existing, err := users.Users(ctx, store.Page{N: 1})
	if err != nil {
		return "", apperr.Wrap(err, apperr.EUNAVAILABLE, "cannot list users")
	}
	if len(existing) > 0 {
		if password != "" {
			logger.Info("users exist: the initial admin password setting is ignored")
		}
		return "", nil
	}
	if password == "" {
		generated = rand.Text() // 26 base32 characters, 130 bits
		password = generated
	}
	hash, err := HashPassword(password, DefaultPasswordParams())
	if err != nil {
		return "", err
	}
	u := &store.User{Name: AdminUser, PasswordHash: hash, Admin: true}
	if err := users.CreateUser(ctx, u); err != nil {
		if apperr.Is(err, apperr.ECONFLICT) {
			return "", nil
		}
		return "", apperr.Wrap(err, apperr.EUNAVAILABLE, "cannot create the admin user")
	}
	logger.Info("created the admin user", "user", AdminUser, "generated_password", generated != "")
	return generated, nil
}
