package awsapi

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
)

// QueryOperation handles one operation of an AWS Query protocol service
// (form-encoded parameters in, XML out). It returns the value to encode as
// the <Action>Result element (nil for none) or an error, as JSONOperation.
type QueryOperation func(ctx context.Context, p Params) (any, error)

// QueryService is a service spoken over the AWS Query protocol, such as IAM.
type QueryService struct {
	SigningName string // SigV4 service name, e.g. "iam"
	// SigningRegion is the region requests are signed for when the
	// service is global (IAM: us-east-1); requests signed for the server's
	// own region are accepted too, since clients pointed at a custom
	// endpoint sign with their configured region.
	SigningRegion string
	Version       string // the API version requests must name, e.g. "2010-05-08"
	Namespace     string // the XML namespace of answers
	Operations    map[string]QueryOperation
	// Authorize, when set, is asked whether an IAM user's request may run
	// (requests signed with the root key are not asked); an error is sent
	// instead of the answer.
	Authorize func(ctx context.Context, action string, p Params) error
}

// Params are the form parameters of a Query request.
type Params struct{ url.Values }

// Str returns a parameter, or nil when it is absent.
func (p Params) Str(name string) *string {
	if vs, ok := p.Values[name]; ok && len(vs) > 0 {
		return &vs[0]
	}
	return nil
}

// Int returns a whole-number parameter, nil when it is absent, or a
// validation error naming it when it is not a number.
func (p Params) Int(name string) (*int, error) {
	s := p.Str(name)
	if s == nil {
		return nil, nil
	}
	n, err := strconv.Atoi(*s)
	if err != nil {
		return nil, &Error{Code: "ValidationError", Message: fmt.Sprintf("Invalid value '%s' for parameter %s: not an integer.", *s, name)}
	}
	return &n, nil
}

// Bool returns a boolean parameter ("true"/"false"), false when absent.
func (p Params) Bool(name string) bool {
	s := p.Str(name)
	return s != nil && strings.EqualFold(*s, "true")
}

// List returns the members of a list parameter: name.member.1,
// name.member.2, ... in order, stopping at the first missing index.
func (p Params) List(name string) []string {
	var out []string
	for i := 1; ; i++ {
		v := p.Str(name + ".member." + strconv.Itoa(i))
		if v == nil {
			return out
		}
		out = append(out, *v)
	}
}

// Structs returns the members of a list of structures: for each index i,
// the fields name.member.i.<field>, as a map; it stops at the first index
// with no field.
func (p Params) Structs(name string, fields ...string) []map[string]*string {
	var out []map[string]*string
	for i := 1; ; i++ {
		m := map[string]*string{}
		found := false
		for _, f := range fields {
			v := p.Str(name + ".member." + strconv.Itoa(i) + "." + f)
			m[f] = v
			found = found || v != nil
		}
		if !found {
			return out
		}
		out = append(out, m)
	}
}

// isQuery reports whether a request is a Query protocol request: a
// form-encoded POST without a target header.
func isQuery(r *http.Request) bool {
	if r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

// queryService returns the Query service a request is signed for, or why
// its Authorization header names none: missing or malformed (an
// *AuthError), or another service (nil, nil).
func (s *Server) queryService(r *http.Request) (*QueryService, *AuthError) {
	a, aerr := authorization(r)
	if aerr != nil {
		return nil, aerr
	}
	for _, q := range s.Query {
		if q.SigningName == a.service {
			return q, nil
		}
	}
	return nil, nil
}

// serveQuery answers a Query protocol request.
func (s *Server) serveQuery(ctx context.Context, w http.ResponseWriter, r *http.Request, reqID string) {
	svc, aerr := s.queryService(r)
	ns := ""
	if svc != nil {
		ns = svc.Namespace
	}
	fail := func(err *Error) { writeQueryError(w, ns, reqID, err) }
	refuse := func(err *Error) {
		refuseUnread(w)
		fail(err)
	}
	action := ""
	defer func() {
		if p := recover(); p != nil {
			s.logger().ErrorContext(ctx, "panic in request", "action", action, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			fail(&Error{Code: "ServiceFailure", Message: "Internal error.", Status: http.StatusInternalServerError})
		}
	}()
	if r.Method != http.MethodPost {
		refuse(&Error{Code: "InvalidAction", Message: "Only POST requests are supported."})
		return
	}
	if r.ContentLength > s.MaxBody {
		refuse(admitError(errBodyTooLarge, s.MaxBody, true))
		return
	}
	if aerr != nil {
		refuse(aerr.QueryError())
		return
	}
	if svc == nil {
		refuse(&Error{Code: "InvalidAction", Message: "This endpoint speaks the Query protocol for IAM only; other services use the AWS JSON protocol (X-Amz-Target)."})
		return
	}
	regions := []string{s.Verifier.Region}
	if svc.SigningRegion != "" {
		regions = append(regions, svc.SigningRegion)
	}
	body, id, held, err := s.admit(w, r, s.MaxBody, svc.SigningName, regions...)
	defer s.Budget.release(held)
	if err != nil {
		refuse(admitError(err, s.MaxBody, true))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(&Error{Code: "MalformedQueryString", Message: "The request body is not a valid form encoding."})
		return
	}
	action = form.Get("Action")
	op := svc.Operations[action]
	switch {
	case action == "":
		fail(&Error{Code: "MissingAction", Message: "The request must contain the parameter Action."})
		return
	case op == nil:
		// AWS's wording, then what bridgeport adds.
		fail(&Error{Code: "InvalidAction", Message: fmt.Sprintf("Could not find operation %s for version %s: bridgeport's %s API does not implement it; docs/OPERATIONS.md lists the operations it does.",
			action, form.Get("Version"), strings.ToUpper(svc.SigningName))})
		return
	}
	if v := form.Get("Version"); v != svc.Version {
		fail(&Error{Code: "InvalidAction", Message: fmt.Sprintf("Could not find operation %s for version %s", action, v)})
		return
	}
	ctx = context.WithValue(ctx, keyIdentity, id)
	ctx = context.WithValue(ctx, keyHost, r.Host)
	if id.Principal != "" && svc.Authorize != nil {
		if err := svc.Authorize(ctx, action, Params{form}); err != nil {
			fail(asError(err))
			return
		}
	}
	out, err := op(ctx, Params{form})
	if err != nil {
		var aerr *Error
		if !errors.As(err, &aerr) {
			s.logger().ErrorContext(ctx, "request failed", "action", action, "error", err)
			aerr = &Error{Code: "ServiceFailure", Message: "Internal error.", Status: http.StatusInternalServerError}
		}
		fail(aerr)
		return
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	fmt.Fprintf(&buf, `<%sResponse xmlns="%s">`, action, ns)
	if out != nil {
		enc := xml.NewEncoder(&buf)
		if err := enc.EncodeElement(out, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
			s.logger().ErrorContext(ctx, "encode response", "action", action, "error", err)
			buf.Reset()
			fail(&Error{Code: "ServiceFailure", Message: "Internal error.", Status: http.StatusInternalServerError})
			return
		}
	}
	fmt.Fprintf(&buf, `<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, reqID, action)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// writeQueryError sends err as AWS Query protocol services do.
func writeQueryError(w http.ResponseWriter, ns, reqID string, err *Error) {
	fault := "Sender"
	if err.HTTPStatus() >= 500 {
		fault = "Receiver"
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, `<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>`, ns, fault)
	_ = xml.EscapeText(&b, []byte(err.Code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(err.Message))
	fmt.Fprintf(&b, "</Message></Error><RequestId>%s</RequestId></ErrorResponse>", reqID)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(err.HTTPStatus())
	_, _ = w.Write(b.Bytes())
}
