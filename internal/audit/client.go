package audit

import "context"

type clientKey struct{}

type client struct{ ip, userAgent string }

// WithClient returns ctx carrying the IP address and user agent of the
// client whose request ctx serves. Writer.Record fills them into events
// that lack them, so producers need not pass the request around.
func WithClient(ctx context.Context, ip, userAgent string) context.Context {
	return context.WithValue(ctx, clientKey{}, client{ip: ip, userAgent: userAgent})
}

// ClientFrom returns the client IP address and user agent ctx carries, or
// empty strings.
func ClientFrom(ctx context.Context) (ip, userAgent string) {
	c, _ := ctx.Value(clientKey{}).(client)
	return c.ip, c.userAgent
}
