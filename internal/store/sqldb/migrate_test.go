package sqldb

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name    string
		files   fstest.MapFS
		want    []int64 // versions in order
		wantErr string
	}{
		{"ordered by number, not name", fstest.MapFS{
			"10_ten.sql": file("x"), "2_two.sql": file("y"), "0001_one.sql": file("z"),
			"README.md": file("ignored"), "sub/3_x.sql": file("ignored"),
		}, []int64{1, 2, 10}, ""},
		{"empty", fstest.MapFS{}, nil, ""},
		{"no version", fstest.MapFS{"init.sql": file("x")}, nil, "init.sql"},
		{"no description", fstest.MapFS{"0001.sql": file("x")}, nil, "0001.sql"},
		{"zero version", fstest.MapFS{"0_x.sql": file("x")}, nil, "0_x.sql"},
		{"non-numeric version", fstest.MapFS{"v1_x.sql": file("x")}, nil, "v1_x.sql"},
		{"duplicate version", fstest.MapFS{"1_a.sql": file("x"), "01_b.sql": file("y")}, nil, "same version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := LoadMigrations(tc.files)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, m := range ms {
				got = append(got, m.Version)
				if m.SQL == "" || !strings.HasSuffix(m.Name, ".sql") {
					t.Errorf("migration %+v", m)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("versions = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("versions = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestProjectOf(t *testing.T) {
	for _, tc := range []struct {
		repo, want string
		ok         bool
	}{
		{"p/r", "p", true},
		{"p/a/b", "p", true},
		{"norepo", "", false},
		{"/r", "", false},
		{"p/", "", false},
		{"", "", false},
	} {
		got, err := projectOf(tc.repo)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("projectOf(%q) = %q, %v", tc.repo, got, err)
		}
	}
}
