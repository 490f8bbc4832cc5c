// Package awsapi speaks the AWS wire protocols on one HTTP listener: it
// verifies Signature Version 4 (what the headers tell before a body is
// read, the rest after), reads bodies within a shared budget of bytes,
// tells the services apart by their target header (AWS JSON 1.0 and 1.1,
// as used by EventBridge and SQS; the Query protocol slots in next to
// them), decodes requests, and encodes results and errors exactly as AWS
// does. Operations themselves live elsewhere.
package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// JSONOperation handles one operation of an AWS JSON protocol service. It
// receives the raw request body (already authenticated) and returns a value
// to encode as the JSON result, or an error: an *Error is sent as is,
// anything else as an InternalException whose text is logged, not sent.
type JSONOperation func(ctx context.Context, body []byte) (any, error)

// JSONService is a service spoken over AWS JSON 1.0 or 1.1.
type JSONService struct {
	SigningName  string // SigV4 service name, e.g. "events"
	TargetPrefix string // X-Amz-Target prefix, e.g. "AWSEvents"
	Version      string // "1.0" or "1.1"
	Operations   map[string]JSONOperation
	// MaxBody, when set, replaces the server's MaxBody for this service.
	MaxBody int64
	// Authorize, when set, is asked whether an IAM user's request for the
	// operation may run (requests signed with the root key are not asked);
	// an error is sent instead of the answer.
	Authorize func(ctx context.Context, op string, body []byte) error
}

// Server dispatches AWS API requests to services. Safe for concurrent use
// once built.
type Server struct {
	Verifier *Verifier
	Services []*JSONService
	// Query are the services spoken over the Query protocol.
	Query []*QueryService
	// MaxBody is the largest request body accepted, in bytes.
	MaxBody int64
	// Budget bounds the bytes of request bodies held at once; nil bounds
	// nothing.
	Budget *Budget
	// Log receives one line per failed request; nil discards.
	Log *slog.Logger
}

type ctxKey int

const (
	keyIdentity ctxKey = iota
	keyRequestID
	keyHost
)

// HostFrom returns the Host the request ctx belongs to was sent to, for
// answers that carry URLs (queue URLs).
func HostFrom(ctx context.Context) string {
	h, _ := ctx.Value(keyHost).(string)
	return h
}

// IdentityFrom returns the caller of the request ctx belongs to.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(keyIdentity).(Identity)
	return id, ok
}

// RequestIDFrom returns the id of the request ctx belongs to.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// NewRequestID returns a random request id in the UUID form AWS uses.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := NewRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	ctx := context.WithValue(r.Context(), keyRequestID, reqID)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	w = rec
	start := time.Now()
	defer func() {
		s.logger().DebugContext(ctx, "request", "target", r.Header.Get("X-Amz-Target"), "status", rec.status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr)
	}()
	if len(s.Query) > 0 && isQuery(r) {
		s.serveQuery(ctx, w, r, reqID)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	svc, op := s.lookup(target)
	version := "1.1"
	if svc != nil {
		version = svc.Version
	}
	fail := func(err *Error) {
		writeJSONError(w, version, err)
	}
	refuse := func(err *Error) {
		refuseUnread(w)
		fail(err)
	}
	defer func() {
		if p := recover(); p != nil {
			s.logger().ErrorContext(ctx, "panic in request", "target", target, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			fail(&Error{Code: CodeInternal, Message: "Internal error.", Status: http.StatusInternalServerError})
		}
	}()
	if r.Method != http.MethodPost {
		refuse(&Error{Code: CodeUnknownOperation, Message: "Only POST requests are supported."})
		return
	}
	if svc == nil {
		refuse(s.unknownOperation(target, nil))
		return
	}
	limit := s.MaxBody
	if svc.MaxBody > 0 {
		limit = svc.MaxBody
	}
	body, id, held, err := s.admit(w, r, limit, svc.SigningName, s.Verifier.Region)
	defer s.Budget.release(held)
	if err != nil {
		refuse(admitError(err, limit, false))
		return
	}
	if op == nil {
		fail(s.unknownOperation(target, svc))
		return
	}
	out, aerr := s.dispatch(ctx, svc, op, target, id, r.Host, body)
	if aerr != nil {
		fail(aerr)
		return
	}
	data, err := json.Marshal(out)
	if err != nil {
		s.logger().ErrorContext(ctx, "encode response", "target", target, "error", err)
		fail(&Error{Code: CodeInternal, Message: "Internal error.", Status: http.StatusInternalServerError})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-"+version)
	// The length up front, as AWS sends it: no chunked encoding.
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// dispatch runs an authenticated request's operation as its caller id:
// for an IAM principal the service's authorization first, then the
// operation. It returns the result, or the error the caller is sent.
func (s *Server) dispatch(ctx context.Context, svc *JSONService, op JSONOperation, target string, id Identity, host string, body []byte) (any, *Error) {
	ctx = context.WithValue(ctx, keyIdentity, id)
	ctx = context.WithValue(ctx, keyHost, host)
	if id.Principal != "" && svc.Authorize != nil {
		if err := svc.Authorize(ctx, target[len(svc.TargetPrefix)+1:], body); err != nil {
			return nil, asError(err)
		}
	}
	out, err := op(ctx, body)
	if err != nil {
		var aerr *Error
		if !errors.As(err, &aerr) {
			s.logger().ErrorContext(ctx, "request failed", "target", target, "error", err)
			aerr = &Error{Code: CodeInternal, Message: "Internal error.", Status: http.StatusInternalServerError}
		}
		return nil, aerr
	}
	return out, nil
}

// Invoke runs the operation target ("<prefix>.<operation>", as in
// X-Amz-Target) on a JSON request body as the caller id, in this process:
// what a request signed with id's key would do, with the same
// authorization and the same answer, encoded as JSON. An AWS error is
// returned as an *Error. host stands for the request's Host (queue URLs
// are made from it). The console acts for its signed-in users so.
func (s *Server) Invoke(ctx context.Context, id Identity, host, target string, body []byte) (data []byte, err error) {
	svc, op := s.lookup(target)
	if svc == nil || op == nil {
		return nil, s.unknownOperation(target, svc)
	}
	ctx = context.WithValue(ctx, keyRequestID, NewRequestID())
	defer func() {
		if p := recover(); p != nil {
			s.logger().ErrorContext(ctx, "panic in request", "target", target, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			data, err = nil, &Error{Code: CodeInternal, Message: "Internal error.", Status: http.StatusInternalServerError}
		}
	}()
	out, aerr := s.dispatch(ctx, svc, op, target, id, host, body)
	if aerr != nil {
		return nil, aerr
	}
	return json.Marshal(out)
}

// statusRecorder remembers the status a handler sent, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) lookup(target string) (*JSONService, JSONOperation) {
	prefix, name, ok := strings.Cut(target, ".")
	if !ok {
		return nil, nil
	}
	for _, svc := range s.Services {
		if svc.TargetPrefix == prefix {
			return svc, svc.Operations[name]
		}
	}
	return nil, nil
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// writeJSONError sends err as AWS JSON protocols do: the code in __type and
// in the X-Amzn-ErrorType header, the text in message.
func writeJSONError(w http.ResponseWriter, version string, err *Error) {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{err.Code, err.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-"+version)
	w.Header().Set("X-Amzn-ErrorType", err.Code)
	if err.QueryCode != "" {
		fault := "Sender"
		if err.HTTPStatus() >= 500 {
			fault = "Receiver"
		}
		w.Header().Set("x-amzn-query-error", err.QueryCode+";"+fault)
	}
	w.WriteHeader(err.HTTPStatus())
	_, _ = w.Write(body)
}

// Access is one permission a request needs: an IAM action on a resource,
// with the condition keys the request sets.
type Access struct {
	Action   string
	Resource string
	Context  map[string]string
}

// asError returns err as the *Error a client sees: itself, or an
// internal error.
func asError(err error) *Error {
	var aerr *Error
	if errors.As(err, &aerr) {
		return aerr
	}
	return &Error{Code: CodeInternal, Message: "Internal error.", Status: http.StatusInternalServerError}
}
