// Package pgtest gives tests a fresh PostgreSQL schema of their own on the
// test server named by CUSTOMS_TEST_POSTGRES_DSN (scripts/test.sh sets it),
// so that tests of every package that runs against PostgreSQL share one
// way of getting there and clean up after themselves.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// DSNVar names the environment variable holding the test server's DSN, a
// postgres:// URL of a database the tests may create schemas in.
const DSNVar = "CUSTOMS_TEST_POSTGRES_DSN"

// DSN returns the test server's DSN, or skips t when DSNVar is unset.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNVar)
	if dsn == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to a database the tests may create schemas in, e.g. "+
			"%s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'", DSNVar, DSNVar)
	}
	return dsn
}

// Schema creates a schema named prefix plus a random suffix on the test
// server (skipping t without one), drops it when t ends, and returns the
// server's DSN with its search_path set to that schema. Stores opened on
// the DSN must be closed before t's cleanups run this one: register their
// Close with t.Cleanup after calling Schema.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	dsn := DSN(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	schema := prefix + strings.ToLower(rand.Text()[:12])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return WithParam(t, dsn, "search_path", schema)
}

// WithParam returns dsn with the run-time parameter key set to value; it
// fails t when dsn is not a postgres:// URL.
func WithParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", DSNVar)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
