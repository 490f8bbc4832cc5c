package deliver

import (
	"context"
	"time"
)

// invocation is the request a delivery of body to t sends: the
// destination's method and endpoint, the target's HttpParameters (JSONPath
// values taken from event), the connection's parameters and auth.
func (t *Target) invocation(body, event []byte, auth Auth) *Invocation {
	d := t.Destination
	return &Invocation{Method: d.Method, Endpoint: d.Endpoint, Path: t.Path, Body: body, Event: event,
		Header: t.Header, Query: t.Query, ConnHeader: d.Header, ConnQuery: d.Query, ConnBody: d.Body, Auth: auth}
}

// Probe sends event to an API destination target as a delivery would send
// an event (its method, endpoint, HTTP parameters and connection auth,
// through the same invoker: TLS trust, private-address guard, plain-http
// rule, timeout, no redirects), but as the body itself: the target's input
// transformation is not applied. It records nothing (no attempt, metric,
// rate-limit token or connection state); an OAuth token is taken from the
// cache or fetched, and a failed token request does not deauthorize the
// connection. Start and End bound the request alone; the message never
// shows the connection's secrets.
func (w *Worker) Probe(ctx context.Context, t Target, event []byte) Result {
	d := t.Destination
	auth := d.Auth
	if d.OAuth != nil {
		tok, err := w.tokens.get(ctx, d.OAuth)
		if err != nil {
			now := time.Now()
			return Result{Code: CodeInvalidParameter, Message: redact("no request sent: no OAuth token: "+err.Error(), auth, d), Start: now, End: now}
		}
		auth.Token = tok
	}
	start := time.Now()
	res := w.cfg.Invoker.Invoke(ctx, t.invocation(event, event, auth))
	res.Start, res.End = start, time.Now()
	res.Message = redact(res.Message, auth, d)
	return res
}
