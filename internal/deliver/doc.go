// Package deliver invokes targets: it builds the HTTP request EventBridge
// would send to an API destination (body, headers, authorization,
// parameters), sends it under EventBridge's rules (a 5-second timeout,
// verified TLS, no redirects, no private addresses and no plain http
// unless allowed, OAuth token requests included), and classifies the
// outcome (success, retried, or not retried, with EventBridge's error code
// and a message a person can act on).
package deliver
