package apiclient

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

// TestUnreachableServer checks the error of a request to a server that
// is not there: EUNAVAILABLE, naming the server once and the transport's
// reason, without the method and URL the *url.Error would repeat.
func TestUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = (&Client{BaseURL: base, Username: "u", Password: "p"}).Projects(context.Background())
	if !apperr.Is(err, apperr.EUNAVAILABLE) {
		t.Fatalf("Projects: %v, want EUNAVAILABLE", err)
	}
	msg := apperr.Message(err)
	if !strings.HasPrefix(msg, "cannot reach customs at "+base+": ") || strings.Count(msg, base) != 1 ||
		strings.Contains(msg, "/api/v1/projects") || !strings.Contains(msg, "connection refused") {
		t.Errorf("message %q: want the server named once and the transport's reason", msg)
	}
}
