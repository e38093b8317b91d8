// Package ldaptest runs a real OpenLDAP server (Debian's slapd) for tests:
// a private configuration (slapd.conf) and database in a temp directory,
// listening on free loopback ports, loaded with ldapadd and changed with
// ldapmodify, and stopped when the test ends.
//
// When slapd or the ldap-utils are missing the test is skipped with a
// message naming `make test` (whose scripts/test-deps.sh installs them),
// or failed when CUSTOMS_E2E=1.
package ldaptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/certs"
)

// Fixed names of the directory every Server holds.
const (
	BaseDN        = "dc=example,dc=org"
	PeopleDN      = "ou=people," + BaseDN
	GroupsDN      = "ou=groups," + BaseDN
	AdminDN       = "cn=admin," + BaseDN
	AdminPassword = "admin-secret"
	// ServiceDN and ServicePassword are the account customs searches with.
	ServiceDN       = "cn=customs,ou=services," + BaseDN
	ServicePassword = "service-secret"
)

// BaseLDIF is the tree every Server starts with: the organization, the
// people, groups and services units, and the service account. Tests add
// their users and groups with Add.
const BaseLDIF = `dn: ` + BaseDN + `
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ` + PeopleDN + `
objectClass: organizationalUnit
ou: people

dn: ` + GroupsDN + `
objectClass: organizationalUnit
ou: groups

dn: ou=services,` + BaseDN + `
objectClass: organizationalUnit
ou: services

dn: ` + ServiceDN + `
objectClass: person
cn: customs
sn: customs
userPassword: ` + ServicePassword + `
`

// startTimeout bounds how long slapd may take to answer.
const startTimeout = 30 * time.Second

// Options changes how a Server is started.
type Options struct {
	// TLS also serves ldaps:// and StartTLS with a certificate for
	// 127.0.0.1 signed by a generated CA (CAFile).
	TLS bool
	// AnonymousRead lets anonymous clients search (the default of slapd);
	// without it only bound clients may read entries.
	AnonymousRead bool
}

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:<port>.
	URL string
	// LDAPSURL is ldaps://127.0.0.1:<port> with Options.TLS, else "".
	LDAPSURL string
	// CAFile verifies the server's certificate with Options.TLS.
	CAFile string

	dir  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	bins tools
}

// tools are the absolute paths of the OpenLDAP programs.
type tools struct{ slapd, ldapadd, ldapmodify string }

// findTools looks the OpenLDAP programs up, skipping or failing t when one
// is missing.
func findTools(t testing.TB) tools {
	t.Helper()
	look := func(name string, extra ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, p := range extra {
			if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
				return p
			}
		}
		msg := fmt.Sprintf("%s is not installed (Debian packages slapd and ldap-utils)", name)
		if os.Getenv("CUSTOMS_E2E") == "1" {
			t.Fatalf("%s (CUSTOMS_E2E=1: missing prerequisites fail; `make test` installs them)", msg)
		}
		t.Skipf("%s: run `make test`, which installs it (or set CUSTOMS_E2E=1 to make this a failure)", msg)
		return ""
	}
	return tools{
		slapd:      look("slapd", "/usr/sbin/slapd"),
		ldapadd:    look("ldapadd"),
		ldapmodify: look("ldapmodify"),
	}
}

// Start starts slapd with a fresh database holding BaseLDIF, and stops it
// when t ends (printing its log if t failed).
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s := &Server{bins: findTools(t), dir: t.TempDir(), logs: &syncBuffer{}}
	if err := os.Mkdir(filepath.Join(s.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	var tlsConf string
	if o.TLS {
		g, err := certs.Generate(filepath.Join(s.dir, "tls"), []string{"127.0.0.1", "localhost"}, time.Now())
		if err != nil {
			t.Fatalf("ldaptest: generating certificates: %v", err)
		}
		s.CAFile = g.CAFile
		tlsConf = fmt.Sprintf("TLSCertificateFile %s\nTLSCertificateKeyFile %s\nTLSCACertificateFile %s\n", g.CertFile, g.KeyFile, g.CAFile)
	}
	read := "access to * by users read by * none"
	if o.AnonymousRead {
		read = "access to * by * read"
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
%[2]s
database mdb
maxsize 16777216
suffix "%[3]s"
rootdn "%[4]s"
rootpw %[5]s
directory %[1]s/data
overlay memberof
access to attrs=userPassword by self read by anonymous auth by * none
%[6]s
`, s.dir, tlsConf, BaseDN, AdminDN, AdminPassword, read)
	confPath := filepath.Join(s.dir, "slapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("slapd log:\n%s", tail(s.logs.String(), 64<<10))
		}
	})
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if lastErr = s.start(confPath, o.TLS); lastErr == nil {
			s.Add(t, BaseLDIF)
			return s
		}
	}
	t.Fatalf("ldaptest: starting slapd: %v\n%s", lastErr, tail(s.logs.String(), 16<<10))
	return nil
}

// start runs slapd on free ports and waits until it accepts connections.
// A port taken meanwhile by someone else makes slapd exit: an error, and
// Start tries other ports.
func (s *Server) start(confPath string, withTLS bool) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	listen := s.URL + "/"
	if withTLS {
		tlsPort, err := freePort()
		if err != nil {
			return err
		}
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", tlsPort)
		listen += " " + s.LDAPSURL + "/"
	}
	// -d keeps slapd in the foreground, logging to stderr.
	s.cmd = exec.Command(s.bins.slapd, "-f", confPath, "-h", listen, "-d", "stats")
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("slapd exited: %v", s.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "ldap://"), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
	}
	s.Stop()
	return fmt.Errorf("slapd did not listen on %s within %s", s.URL, startTimeout)
}

// Stop stops slapd (SIGTERM, then SIGKILL after 10 seconds). Connections
// to URL are refused afterwards. It is safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.done == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Add adds the entries of ldif (ldapadd, as the directory's administrator).
func (s *Server) Add(t testing.TB, ldif string) {
	t.Helper()
	s.run(t, s.bins.ldapadd, ldif)
}

// Modify applies the changes of ldif (ldapmodify, as the administrator),
// e.g. "dn: cn=devs,...\nchangetype: modify\ndelete: member\nmember: ...".
func (s *Server) Modify(t testing.TB, ldif string) {
	t.Helper()
	s.run(t, s.bins.ldapmodify, ldif)
}

func (s *Server) run(t testing.TB, bin, ldif string) {
	t.Helper()
	cmd := exec.Command(bin, "-x", "-H", s.URL, "-D", AdminDN, "-w", AdminPassword)
	cmd.Stdin = strings.NewReader(ldif)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s\nLDIF:\n%s", filepath.Base(bin), err, out, ldif)
	}
}

// User returns the LDIF of a person uid=<uid> in PeopleDN with password.
func User(uid, password string) string {
	return fmt.Sprintf("dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n",
		uid, PeopleDN, uid, uid, uid, password)
}

// Group returns the LDIF of a groupOfNames cn=<name> in GroupsDN whose
// members are the people with the given uids (at least one).
func Group(name string, uids ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: cn=%s,%s\nobjectClass: groupOfNames\ncn: %s\n", name, GroupsDN, name)
	for _, u := range uids {
		fmt.Fprintf(&b, "member: %s\n", UserDN(u))
	}
	b.WriteString("\n")
	return b.String()
}

// UserDN returns the DN of person uid in PeopleDN.
func UserDN(uid string) string { return "uid=" + uid + "," + PeopleDN }

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
