package main

import "testing"

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/x?sslmode=disable": "postgres://u:REDACTED@db:5432/x?sslmode=disable",
		"host=db user=u password=secret dbname=x":       "host=db user=u password=REDACTED dbname=x",
		"host=db password='se cret' dbname=x":           "host=db password=REDACTED dbname=x",
		"postgres://u@db/x":                             "postgres://u@db/x",
		"":                                              "",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
