package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// OAuthClient is an OAUTH_CLIENT_CREDENTIALS connection's token request,
// secrets in clear.
type OAuthClient struct {
	ConnectionArn string
	// Version changes whenever the connection's settings change, so that a
	// token fetched with old credentials is not reused.
	Version      string
	Endpoint     string
	Method       string // GET, POST or PUT
	ClientID     string
	ClientSecret string
	Header       []Param
	Query        []Param
	Body         []Param
}

// refreshBefore is how long before a token's expiry it is refreshed.
const refreshBefore = time.Minute

type token struct {
	value   string
	expires time.Time // zero: no expiry given
}

// tokens caches OAuth access tokens by connection. Safe for concurrent use;
// concurrent requests for one connection share one fetch.
type tokens struct {
	iv *Invoker
	mu sync.Mutex
	m  map[string]*tokenEntry
}

type tokenEntry struct {
	mu  sync.Mutex // held while fetching
	tok token
}

func newTokens(iv *Invoker) *tokens { return &tokens{iv: iv, m: map[string]*tokenEntry{}} }

func (ts *tokens) entry(c *OAuthClient) *tokenEntry {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	key := c.ConnectionArn + "\x00" + c.Version
	e := ts.m[key]
	if e == nil {
		e = &tokenEntry{}
		ts.m[key] = e
	}
	return e
}

// get returns a valid token, fetching one when there is none or when it
// expires within refreshBefore.
func (ts *tokens) get(ctx context.Context, c *OAuthClient) (string, error) {
	e := ts.entry(c)
	e.mu.Lock()
	defer e.mu.Unlock()
	fresh := e.tok.value != "" && (e.tok.expires.IsZero() || time.Until(e.tok.expires) > refreshBefore)
	if fresh {
		return e.tok.value, nil
	}
	tok, err := ts.fetch(ctx, c)
	if err != nil {
		e.tok = token{}
		return "", err
	}
	e.tok = tok
	return tok.value, nil
}

// fetch requests a token with the client credentials grant (RFC 6749
// section 4.4): the client id and secret as HTTP Basic credentials and
// grant_type=client_credentials with the connection's body parameters as a
// form body (or, for GET, in the query string); the connection's OAuth
// header and query parameters are added. UNVERIFIED: AWS does not document
// its exact token request. The error never contains the secret or the
// token.
func (ts *tokens) fetch(ctx context.Context, c *OAuthClient) (token, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		// Not echoed: an unparsable URL may hold credentials (user:pass@).
		return token{}, errors.New("the authorization endpoint is not a URL")
	}
	// The request carries the client secret: the same rules as invocations
	// (https unless allowed; the private-address guard, TLS trust and no
	// redirects come with the invoker's client).
	if why := ts.iv.insecure(u); why != "" {
		return token{}, fmt.Errorf("token request not sent: the authorization endpoint %s", why)
	}
	q := u.Query()
	for _, p := range c.Query {
		q.Set(p.Key, p.Value)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	for _, p := range c.Body {
		form.Set(p.Key, p.Value)
	}
	var body io.Reader
	if c.Method == http.MethodGet {
		for k, v := range form {
			q[k] = v
		}
	} else {
		body = strings.NewReader(form.Encode())
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, c.Method, u.String(), body)
	if err != nil {
		return token{}, fmt.Errorf("cannot build the token request: %v", err)
	}
	for _, p := range c.Header {
		req.Header.Set(p.Key, p.Value)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	resp, err := ts.iv.client.Do(req)
	var perr *privateError
	if errors.As(err, &perr) {
		return token{}, fmt.Errorf("token request not sent: %s", perr.about("the authorization endpoint "+where(u)))
	}
	if err != nil {
		r := classifyError(err, u, ts.iv.timeout)
		return token{}, fmt.Errorf("token request failed: %s", r.Message)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A 3xx too: redirects are not followed, as for invocations.
		return token{}, fmt.Errorf("the authorization endpoint %s answered %d %s", where(u), resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	var t struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if json.Unmarshal(data, &t) != nil || t.AccessToken == "" {
		return token{}, fmt.Errorf("the authorization endpoint %s answered without an access_token", where(u))
	}
	tok := token{value: t.AccessToken}
	var secs float64
	if s := strings.Trim(string(t.ExpiresIn), `"`); s != "" {
		if _, err := fmt.Sscan(s, &secs); err == nil && secs > 0 {
			tok.expires = time.Now().Add(time.Duration(secs * float64(time.Second)))
		}
	}
	return tok, nil
}

// invalidate forgets c's token if it is value, which the invocation
// endpoint refused.
func (ts *tokens) invalidate(c *OAuthClient, value string) {
	e := ts.entry(c)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tok.value == value {
		e.tok = token{}
	}
}
