package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/transform"
)

// Timeout is EventBridge's limit for one invocation of an API destination.
const Timeout = 5 * time.Second

// UserAgent is the User-Agent EventBridge sends to API destinations.
const UserAgent = "Amazon/EventBridge/ApiDestinations"

// Error codes of failed invocations.
const (
	CodeTimeout           = "TIMEOUT"
	CodeConnectionFailure = "CONNECTION_FAILURE"
	CodeErrorFromTarget   = "ERROR_FROM_TARGET"
	CodeThrottling        = "THROTTLING"
	CodeNoResource        = "NO_RESOURCE"
	CodeInvalidParameter  = "INVALID_PARAMETER"
	// Role errors, decided before any request is sent.
	CodeFailedToAssumeRole = "FAILED_TO_ASSUME_ROLE"
	CodeNoPermissions      = "NO_PERMISSIONS"
)

// Param is a connection parameter, its value in clear; Secret marks a
// value the connection keeps secret.
type Param struct {
	Key, Value string
	Secret     bool
}

// Auth is how a connection authorizes invocations, secrets in clear.
type Auth struct {
	Type        string // "BASIC", "API_KEY", "OAUTH_CLIENT_CREDENTIALS"
	Username    string
	Password    string
	APIKeyName  string
	APIKeyValue string
	Token       string // the OAuth access token
}

// Invocation is one call of an API destination.
type Invocation struct {
	Method   string
	Endpoint string   // may contain "*" path wildcards
	Path     []string // values for the wildcards, in order (PathParameterValues; JSONPaths as Header)
	Body     []byte   // the rendered input
	Event    []byte   // the event, for JSONPath parameter values
	// Target's HttpParameters; values starting with "$." are JSONPaths
	// into the event.
	Header map[string]string
	Query  map[string]string
	// The connection's invocation parameters and auth; they win over the
	// target's on the same key.
	ConnHeader, ConnQuery, ConnBody []Param
	Auth                            Auth
}

// Result is the outcome of one invocation.
type Result struct {
	Status  int    // HTTP status, 0 when there was no answer
	Code    string // "" on success
	Message string
	// Retry says whether the failure is retried. RetryAfter is the wait the
	// endpoint asked for (0: none); StopRetrying is set when it sent a
	// negative Retry-After.
	Retry        bool
	RetryAfter   time.Duration
	StopRetrying bool
	// Start and End bound the attempt (set by the worker).
	Start, End time.Time
}

// OK reports success.
func (r Result) OK() bool { return r.Code == "" }

// Options configure an Invoker.
type Options struct {
	AllowPrivate bool           // allow loopback and private addresses
	AllowHTTP    bool           // allow plain http:// endpoints
	RootCAs      *x509.CertPool // trusted roots; nil means the system's
	Timeout      time.Duration  // 0 means Timeout
	// ConnectionClose sends Connection: close with every invocation, as
	// EventBridge does, so that each opens a connection (and for HTTPS
	// does a TLS handshake) of its own. By default connections are kept
	// and reused.
	ConnectionClose bool
}

// Invoker sends invocations and OAuth token requests. Safe for concurrent
// use.
type Invoker struct {
	client    *http.Client // OAuth token requests
	h1        *h1Client    // invocations
	timeout   time.Duration
	allowHTTP bool
	close     bool // Options.ConnectionClose
}

// NewInvoker returns an Invoker with its own connection pool.
func NewInvoker(o Options) *Invoker {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = Timeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		dialer.Control = guardControl
	}
	tlsConf := &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	// OAuth token requests, which are rare, go through net/http.
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf.Clone(), // net/http changes its own
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
		// Responses are read raw, whatever their encoding.
		DisableCompression: true,
	}
	return &Invoker{timeout: timeout, allowHTTP: o.AllowHTTP, close: o.ConnectionClose,
		// Several destinations may share a host, each with up to
		// fastFactor times WorkerConfig.PerTarget calls in flight (64 by
		// default) when it answers fast (see Worker.slotsOf): five such
		// destinations on one host took 320 connections, and with 256
		// kept idle, thousands of connections a second were closed and
		// opened again. An idle connection keeps up to about 40 KB (a
		// TLS one with its buffers); 4,096 are kept over all hosts.
		h1: newH1Client(dialer, tlsConf, 1024, 4096, 90*time.Second),
		client: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// EventBridge does not follow redirects: a 3xx is the answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
}

// dropped are the headers EventBridge removes from the parameters of
// connections and targets, because it sets them itself or they would
// change the request's meaning.
var dropped = func() map[string]bool {
	m := make(map[string]bool)
	for _, h := range []string{"A-IM", "Accept-Charset", "Accept-Datetime", "Accept-Encoding", "Cache-Control", "Connection",
		"Content-Encoding", "Content-Length", "Content-MD5", "Date", "Expect", "Forwarded", "From", "Host", "HTTP2-Settings",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards", "Origin", "Pragma",
		"Proxy-Authorization", "Range", "Referer", "TE", "Trailer", "Transfer-Encoding", "User-Agent", "Upgrade", "Via", "Warning"} {
		m[http.CanonicalHeaderKey(h)] = true
	}
	return m
}()

// paramValue resolves a target's path, header or query-string parameter
// value: a JSONPath into the event (the whole value, as AWS requires: one
// that starts with "$."), or else a literal. A string is sent as is; a
// number, boolean or object as its JSON text; a path the event does not
// have as an empty string (as AWS does for headers and query strings; for
// path values UNVERIFIED, and done the same way).
func paramValue(v string, event []byte) string {
	if !strings.HasPrefix(v, "$.") && v != "$" {
		return v
	}
	raw, ok, err := transform.Select(event, v)
	if err != nil || !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// request builds the HTTP request: its URL (for checks and messages) and
// what is written.
func (inv *Invocation) request() (*url.URL, *h1Request, error) {
	endpoint := inv.Endpoint
	for _, p := range inv.Path {
		i := strings.IndexByte(endpoint, '*')
		if i < 0 {
			break
		}
		endpoint = endpoint[:i] + url.PathEscape(paramValue(p, inv.Event)) + endpoint[i+1:]
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, nil, rootCause(err) // without the URL, which may hold credentials
	}
	if u.Host == "" {
		return nil, nil, fmt.Errorf("no host in %s", where(u))
	}
	if !validToken(inv.Method) {
		return nil, nil, fmt.Errorf("invalid method %q", inv.Method)
	}
	body := inv.Body
	if len(inv.ConnBody) > 0 {
		body = mergeBody(body, inv.ConnBody)
	}
	if len(inv.Query) > 0 || len(inv.ConnQuery) > 0 {
		q := u.Query()
		for k, v := range inv.Query {
			q.Set(k, paramValue(v, inv.Event))
		}
		for _, p := range inv.ConnQuery {
			q.Set(p.Key, p.Value)
		}
		u.RawQuery = q.Encode()
	}
	r := &h1Request{method: inv.Method, scheme: u.Scheme, host: strings.TrimSuffix(u.Host, ":"), hostname: u.Hostname(), port: u.Port(),
		target: u.RequestURI(), body: body,
		header: make([]h1Header, 0, 5+len(inv.Header)+len(inv.ConnHeader))}
	// Later values win over earlier ones of the same (canonical) name:
	// the connection's over the target's, the auth over both.
	set := func(k, v string) error {
		if !validToken(k) {
			return fmt.Errorf("header name %q is not a valid HTTP field name", k)
		}
		if !validFieldValue(v) {
			return fmt.Errorf("header %s has a value with a control character, which HTTP does not allow", http.CanonicalHeaderKey(k))
		}
		k = http.CanonicalHeaderKey(k)
		for i := range r.header {
			if r.header[i].name == k {
				r.header[i].value = v
				return nil
			}
		}
		r.header = append(r.header, h1Header{k, v})
		return nil
	}
	for k, v := range inv.Header {
		if !dropped[http.CanonicalHeaderKey(k)] {
			if err := set(k, paramValue(v, inv.Event)); err != nil {
				return u, nil, err
			}
		}
	}
	for _, p := range inv.ConnHeader {
		if !dropped[http.CanonicalHeaderKey(p.Key)] {
			if err := set(p.Key, p.Value); err != nil {
				return u, nil, err
			}
		}
	}
	switch inv.Auth.Type {
	case "BASIC":
		err = set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(inv.Auth.Username+":"+inv.Auth.Password)))
	case "API_KEY":
		if dropped[http.CanonicalHeaderKey(inv.Auth.APIKeyName)] {
			// Host, Content-Length, Transfer-Encoding... would change how
			// the request is read; without the key it would go unauthorized.
			return u, nil, fmt.Errorf("the connection's API key header %s is one EventBridge sets itself", http.CanonicalHeaderKey(inv.Auth.APIKeyName))
		}
		err = set(inv.Auth.APIKeyName, inv.Auth.APIKeyValue)
	case "OAUTH_CLIENT_CREDENTIALS":
		err = set("Authorization", "Bearer "+inv.Auth.Token)
	}
	if err != nil {
		return u, nil, err
	}
	hasType, hasAuth := false, false
	for _, h := range r.header {
		hasType = hasType || h.name == "Content-Type" && h.value != ""
		hasAuth = hasAuth || h.name == "Authorization"
	}
	if u.User != nil && !hasAuth {
		// Credentials in the endpoint's URL, as net/http sends them.
		pwd, _ := u.User.Password()
		r.header = append(r.header, h1Header{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pwd))})
	}
	if !hasType {
		_ = set("Content-Type", jsonContentType)
	}
	r.header = append(r.header, h1Header{"User-Agent", UserAgent}, h1Header{"Range", firstMiB}, h1Header{"Accept-Encoding", gzipDeflate})
	return u, r, nil
}

// validToken reports whether s is an HTTP token (RFC 9110, 5.6.2): a
// method or a field name.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validFieldValue reports whether v may be sent as a field value: no
// control characters but the tab (a CR or LF would end the field and let
// an event's data write fields of its own).
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

const (
	jsonContentType = "application/json; charset=utf-8"
	firstMiB        = "bytes=0-1048575"
	gzipDeflate     = "gzip,deflate"
)

// mergeBody adds the connection's body parameters to a JSON object body as
// string members (UNVERIFIED: AWS does not document how they merge); other
// bodies are sent unchanged.
func mergeBody(body []byte, params []Param) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return body
	}
	for _, p := range params {
		v, _ := json.Marshal(p.Value)
		obj[p.Key] = v
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return out
}

// Invoke sends one invocation and classifies its outcome.
func (iv *Invoker) Invoke(ctx context.Context, inv *Invocation) Result {
	u, req, err := inv.request()
	if u == nil {
		return Result{Code: CodeInvalidParameter, Message: "cannot build the request: " + err.Error()}
	}
	if why := iv.insecure(u); why != "" {
		return Result{Code: CodeInvalidParameter, Message: "no request sent: " + why}
	}
	if err != nil {
		return Result{Code: CodeInvalidParameter, Message: "no request sent: " + err.Error()}
	}
	req.close = iv.close
	deadline := time.Now().Add(iv.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	resp, err := iv.h1.do(ctx, req, deadline)
	if err != nil {
		return classifyError(err, u, iv.timeout)
	}
	return classifyStatus(resp, u)
}

// insecure says why a request to u may not leave, "" when it may: only
// https:// URLs, and http:// ones when plain http is allowed. It is checked
// when each request is sent, not only when an endpoint is stored, so that
// a record stored under other settings never sends credentials in the
// clear.
func (iv *Invoker) insecure(u *url.URL) string {
	switch {
	case u.Scheme == "https", u.Scheme == "http" && iv.allowHTTP:
		return ""
	case u.Scheme == "http":
		return where(u) + " is plain http, which would carry the credentials in the clear (start bridgeport with --allow-http-endpoints to allow it)"
	}
	return where(u) + " is not an https:// URL"
}

// where names an endpoint in messages without its query string, which may
// carry parameter values.
func where(u *url.URL) string { return u.Scheme + "://" + u.Host + u.Path }

func classifyStatus(resp h1Response, u *url.URL) Result {
	st, excerpt := resp.status, resp.excerpt
	if st >= 200 && st < 300 {
		return Result{Status: st}
	}
	r := Result{Status: st, Code: CodeErrorFromTarget,
		Message: fmt.Sprintf("%s answered %d %s", where(u), st, http.StatusText(st))}
	if text := strings.TrimSpace(string(excerpt)); text != "" {
		r.Message += ": " + strings.ToValidUTF8(text, "?")
	}
	switch {
	case st == http.StatusTooManyRequests:
		r.Code, r.Retry = CodeThrottling, true
	case st == 401, st == 407, st == 409, st >= 500:
		r.Retry = true
	}
	if r.Retry {
		r.RetryAfter, r.StopRetrying = retryAfter(resp.retryAfter, time.Now())
		if r.StopRetrying {
			r.Retry = false
		}
	}
	return r
}

// retryAfter parses Retry-After: delay seconds or an HTTP date. A negative
// number of seconds asks the sender to stop retrying.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(h); err == nil {
		if n < 0 {
			return 0, true
		}
		return time.Duration(n) * time.Second, false
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now), false
	}
	return 0, false
}

func classifyError(err error, u *url.URL, timeout time.Duration) Result {
	var dnsErr *net.DNSError
	var perr *privateError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &perr):
		return Result{Code: CodeInvalidParameter, Message: perr.Error()}
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return Result{Code: CodeNoResource, Message: fmt.Sprintf("%s: the host name does not resolve", where(u))}
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return Result{Code: CodeConnectionFailure, Retry: true, Message: fmt.Sprintf("%s: TLS certificate not trusted: %v", where(u), rootCause(err))}
	case isTimeout(err):
		return Result{Code: CodeTimeout, Retry: true, Message: fmt.Sprintf("%s did not answer within %s", where(u), timeout)}
	}
	return Result{Code: CodeConnectionFailure, Retry: true, Message: fmt.Sprintf("%s: %v", where(u), rootCause(err))}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// rootCause strips the url.Error wrapper, which repeats the full URL.
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Timeout is how long an invocation or a token request may take.
func (iv *Invoker) Timeout() time.Duration { return iv.timeout }

// ResolvesPrivate reports whether a host name resolves to an address
// invocations refuse (loopback, private, link-local, unique-local).
func ResolvesPrivate(ctx context.Context, host string) (bool, error) {
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if blocked(a.Unmap()) {
			return true, nil
		}
	}
	return false, nil
}
