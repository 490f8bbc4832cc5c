package deliver

import (
	"context"
	"time"
)

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
