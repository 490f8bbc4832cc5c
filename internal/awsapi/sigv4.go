package awsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// KeyLookup resolves an access key id to its secret access key and owner.
type KeyLookup func(accessKeyID string) (Key, bool)

// Key is an access key's secret and the principal it belongs to (empty:
// the root key). A temporary key (STS) also has a session token, known by
// its SHA-256 (hex), which requests must carry in X-Amz-Security-Token,
// and an expiry.
type Key struct {
	Secret      string
	Principal   string
	TokenSHA256 string
	Expires     time.Time
}

// Verifier checks AWS Signature Version 4 on incoming requests. Safe for
// concurrent use.
type Verifier struct {
	Region  string // the only region requests may be scoped to
	Lookup  KeyLookup
	Now     func() time.Time // nil means time.Now
	MaxSkew time.Duration    // 0 means 15 minutes
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Identity is who signed a request.
type Identity struct {
	AccessKeyID string
	// Principal is the ARN of the IAM user the key belongs to, or of the
	// assumed role; empty for the root key, which may do everything.
	Principal string
	// Session is set for temporary credentials (STS).
	Session bool
}

// AuthFailure says why a request's signature was refused.
type AuthFailure int

// The ways a signature check fails.
const (
	AuthMissing      AuthFailure = iota + 1 // no Authorization header
	AuthIncomplete                          // a malformed Authorization header or date
	AuthUnknownKey                          // the access key id is not known
	AuthMismatch                            // the signature (or payload hash) does not match
	AuthExpired                             // the request date is outside the allowed skew
	AuthScope                               // the credential scope names another region, service or date
	AuthTokenExpired                        // a temporary key whose session has expired
)

// AuthError is a refused signature. Its message never contains the secret
// or the expected signature.
type AuthError struct {
	Failure AuthFailure
	Message string
}

func (e *AuthError) Error() string { return e.Message }

// JSONError returns the error as an AWS JSON protocol service (events, sqs)
// reports it.
func (e *AuthError) JSONError() *Error {
	code := "InvalidSignatureException"
	switch e.Failure {
	case AuthMissing:
		code = "MissingAuthenticationTokenException"
	case AuthIncomplete:
		code = "IncompleteSignatureException"
	case AuthUnknownKey:
		code = "UnrecognizedClientException"
	case AuthTokenExpired:
		code = "ExpiredTokenException"
	}
	return &Error{Code: code, Message: e.Message, Status: http.StatusBadRequest}
}

// QueryError returns the error as an AWS Query protocol service (iam)
// reports it.
func (e *AuthError) QueryError() *Error {
	code := "SignatureDoesNotMatch"
	switch e.Failure {
	case AuthMissing:
		code = "MissingAuthenticationToken"
	case AuthIncomplete:
		code = "IncompleteSignature"
	case AuthUnknownKey:
		code = "InvalidClientTokenId"
	case AuthTokenExpired:
		code = "ExpiredToken"
	}
	return &Error{Code: code, Message: e.Message, Status: http.StatusForbidden}
}

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDate      = "20060102T150405Z"
	msgMismatch  = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// authHeader is a parsed Authorization header.
type authHeader struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

// authorization returns r's Authorization header, parsed.
func authorization(r *http.Request) (authHeader, *AuthError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return authHeader{}, &AuthError{Failure: AuthMissing, Message: "Missing Authentication Token"}
	}
	return parseAuthorization(h)
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=a;b, Signature=hex" with any spacing between the parts.
func parseAuthorization(h string) (authHeader, *AuthError) {
	var a authHeader
	incomplete := func(msg string) (authHeader, *AuthError) {
		return authHeader{}, &AuthError{Failure: AuthIncomplete, Message: msg}
	}
	rest, ok := strings.CutPrefix(h, sigAlgorithm)
	if !ok || (rest != "" && rest[0] != ' ') {
		return incomplete("Authorization header requires the " + sigAlgorithm + " algorithm.")
	}
	var cred, signed, sig string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return incomplete(fmt.Sprintf("Authorization header requires each component to be of the form key=value; got '%s'.", strings.TrimSpace(part)))
		}
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	var missing []string
	if cred == "" {
		missing = append(missing, "'Credential'")
	}
	if signed == "" {
		missing = append(missing, "'SignedHeaders'")
	}
	if sig == "" {
		missing = append(missing, "'Signature'")
	}
	if len(missing) > 0 {
		return incomplete("Authorization header requires " + strings.Join(missing, ", ") + " parameter.")
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" || parts[4] != "aws4_request" {
		return incomplete("Credential should be scoped to a valid region, service and date, as AKID/DATE/REGION/SERVICE/aws4_request.")
	}
	a.accessKey, a.date, a.region, a.service = parts[0], parts[1], parts[2], parts[3]
	a.signedHeaders = strings.Split(signed, ";")
	a.signature = strings.ToLower(sig)
	return a, nil
}

// Verify checks r's signature. body is the request body, already read.
// service is the signing name the operation expects.
func (v *Verifier) Verify(r *http.Request, body []byte, service string) (Identity, error) {
	return v.VerifyRegion(r, body, service, v.Region)
}

// VerifyRegion is Verify for a request that may be signed for any of
// regions (a global service's signing region, and the server's).
func (v *Verifier) VerifyRegion(r *http.Request, body []byte, service string, regions ...string) (Identity, error) {
	p, err := v.CheckHeaders(r, service, regions...)
	if err != nil {
		return Identity{}, err
	}
	return p.Verify(body)
}

// Pending is a request whose signature passed every check its headers
// allow; Verify finishes with the body. It holds no secret.
type Pending struct {
	v          *Verifier
	r          *http.Request
	a          authHeader
	dateHeader string
}

// CheckHeaders checks what can be checked of r's signature before its
// body is read: an Authorization header that parses as SigV4, the request
// date within the allowed skew, the credential scope (date, one of
// regions, service), Host signed, and a known access key. A request that
// fails here costs no more than its headers.
func (v *Verifier) CheckHeaders(r *http.Request, service string, regions ...string) (*Pending, error) {
	a, aerr := authorization(r)
	if aerr != nil {
		return nil, aerr
	}
	dateHeader := r.Header.Get("X-Amz-Date")
	if dateHeader == "" {
		return nil, &AuthError{Failure: AuthIncomplete, Message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}
	}
	t, err := time.Parse(amzDate, dateHeader)
	if err != nil {
		return nil, &AuthError{Failure: AuthIncomplete, Message: fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'.", dateHeader)}
	}
	if a.date != t.Format("20060102") {
		return nil, &AuthError{Failure: AuthScope, Message: fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", a.date, t.Format("20060102"), dateHeader)}
	}
	now := v.now
	skew := v.MaxSkew
	if skew == 0 {
		skew = 15 * time.Minute
	}
	n := now().UTC()
	if t.Before(n.Add(-skew)) {
		return nil, &AuthError{Failure: AuthExpired, Message: fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.)",
			dateHeader, n.Add(-skew).Format(amzDate), n.Format(amzDate), int(skew/time.Minute))}
	}
	if t.After(n.Add(skew)) {
		return nil, &AuthError{Failure: AuthExpired, Message: fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %d min.)",
			dateHeader, n.Add(skew).Format(amzDate), n.Format(amzDate), int(skew/time.Minute))}
	}
	if !slices.Contains(regions, a.region) {
		return nil, &AuthError{Failure: AuthScope, Message: fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", a.region)}
	}
	if a.service != service {
		return nil, &AuthError{Failure: AuthScope, Message: fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service)}
	}
	if !containsFold(a.signedHeaders, "host") {
		return nil, &AuthError{Failure: AuthMismatch, Message: "'Host' must be a 'SignedHeader' in the AWS Authorization."}
	}
	if _, ok := v.Lookup(a.accessKey); !ok {
		return nil, errUnknownKey()
	}
	return &Pending{v: v, r: r, a: a, dateHeader: dateHeader}, nil
}

func errUnknownKey() *AuthError {
	return &AuthError{Failure: AuthUnknownKey, Message: "The security token included in the request is invalid."}
}

// Verify finishes the check of the request's signature with its body: the
// payload hash and the signature itself.
func (p *Pending) Verify(body []byte) (Identity, error) {
	// Looked up again rather than kept, so that nothing holds the secret
	// between the two steps (and a key removed meanwhile is refused).
	key, ok := p.v.Lookup(p.a.accessKey)
	if !ok {
		return Identity{}, errUnknownKey()
	}
	token := p.r.Header.Get("X-Amz-Security-Token")
	if key.TokenSHA256 != "" || token != "" {
		// A temporary key only with its own session token; a long-term
		// key never with one.
		sum := sha256.Sum256([]byte(token))
		if key.TokenSHA256 == "" || subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(key.TokenSHA256)) != 1 {
			return Identity{}, errUnknownKey()
		}
		if !key.Expires.After(p.v.now()) {
			return Identity{}, &AuthError{Failure: AuthTokenExpired, Message: "The security token included in the request is expired"}
		}
	}
	secret := key.Secret
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if ph := p.r.Header.Get("X-Amz-Content-Sha256"); ph != "" && ph != payloadHash {
		return Identity{}, &AuthError{Failure: AuthMismatch, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	a := p.a
	want := signature(p.r, a.signedHeaders, payloadHash, secret, p.dateHeader, a.date, a.region, a.service)
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return Identity{}, &AuthError{Failure: AuthMismatch, Message: msgMismatch}
	}
	return Identity{AccessKeyID: a.accessKey, Principal: key.Principal, Session: key.TokenSHA256 != ""}, nil
}

// signature computes a request's SigV4 signature.
func signature(r *http.Request, signed []string, payloadHash, secret, amzDate, date, region, service string) string {
	creq := canonicalRequest(r, signed, payloadHash)
	scope := date + "/" + region + "/" + service + "/aws4_request"
	creqHash := sha256.Sum256([]byte(creq))
	toSign := sigAlgorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(creqHash[:])
	key := hmacSHA256([]byte("AWS4"+secret), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "aws4_request")
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

// Sign adds SigV4 headers (X-Amz-Date, X-Amz-Content-Sha256 and
// Authorization, over host, the length and type of the content, the
// target and the date, as the AWS SDKs sign) to
// a request whose body is body.
func Sign(r *http.Request, body []byte, accessKey, secret, region, service string, now time.Time) {
	amz := now.UTC().Format(amzDate)
	date := amz[:8]
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	r.Header.Set("X-Amz-Date", amz)
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	signed := []string{"host", "x-amz-content-sha256", "x-amz-date"}
	if r.ContentLength > 0 {
		signed = append(signed, "content-length")
	}
	for _, h := range []string{"content-type", "x-amz-target"} {
		if r.Header.Get(h) != "" {
			signed = append(signed, h)
		}
	}
	sort.Strings(signed)
	sig := signature(r, signed, payloadHash, secret, amz, date, region, service)
	r.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
		sigAlgorithm, accessKey, date, region, service, strings.Join(signed, ";"), sig))
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalRequest builds SigV4's canonical request for services other
// than S3: the path's segments are URI-encoded twice (the path as sent is
// already encoded once), the query is sorted and encoded, and the signed
// headers are lowercase, trimmed, with inner runs of spaces collapsed.
func canonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = uriEncode(s, false)
	}
	b.WriteString(strings.Join(segs, "/"))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	names := make([]string, len(signed))
	for i, n := range signed {
		names[i] = strings.ToLower(n)
	}
	sort.Strings(names)
	for _, n := range names {
		var vals []string
		switch {
		case n == "host":
			vals = []string{r.Host}
		case n == "content-length" && len(r.Header.Values(n)) == 0 && r.ContentLength >= 0:
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			vals = slices.Clone(r.Header.Values(n))
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(strings.Join(vals, ","))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(names, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil {
			dk = k
		}
		if err2 != nil {
			dv = v
		}
		pairs = append(pairs, kv{uriEncode(dk, true), uriEncode(dv, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p.k + "=" + p.v
	}
	return strings.Join(out, "&")
}

// uriEncode encodes every byte except the unreserved characters A-Z, a-z,
// 0-9, '-', '.', '_' and '~', as SigV4 requires. slash says whether '/' is
// encoded too.
func uriEncode(s string, slash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && !slash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
