package awsapi

import (
	"fmt"
	"net/http"
	"strings"
)

// Error is an error as AWS sends it: a code (the exception name), a message
// and an HTTP status. Operations return it for every failure a client should
// see; anything else becomes an InternalException (status 500) whose text is
// not shown.
type Error struct {
	Code    string // e.g. "ResourceNotFoundException"
	Message string
	Status  int // HTTP status; 0 means 400
	// QueryCode is the legacy error code of a service that is compatible
	// with the Query protocol (SQS), sent in the x-amzn-query-error header
	// (e.g. "AWS.SimpleQueueService.NonExistentQueue"); empty for others.
	QueryCode string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// HTTPStatus returns the status the error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// ConcurrentModification is the error of a write that lost a race with
// another: the resource changed since it was read.
func ConcurrentModification() *Error {
	return &Error{Code: CodeConcurrentMod, Message: "Another request changed the resource at the same time; try again."}
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common error codes shared by the services bridgeport speaks.
const (
	CodeValidation       = "ValidationException"
	CodeSerialization    = "SerializationException"
	CodeUnknownOperation = "UnknownOperationException"
	CodeInternal         = "InternalException"
	CodeNotFound         = "ResourceNotFoundException"
	CodeAlreadyExists    = "ResourceAlreadyExistsException"
	CodeLimitExceeded    = "LimitExceededException"
	CodeAccessDenied     = "AccessDeniedException"
	CodeInvalidPattern   = "InvalidEventPatternException"
	CodeConcurrentMod    = "ConcurrentModificationException"
	CodeManagedRule      = "ManagedRuleException"
	CodeIllegalStatus    = "IllegalStatusException"
)

// unknownOperation is the answer to a JSON protocol request bridgeport has
// no operation for: svc is the service its X-Amz-Target names, nil when
// none does. AWS sends UnknownOperationException without a message; this
// one says what was asked for and what bridgeport serves.
func (s *Server) unknownOperation(target string, svc *JSONService) *Error {
	if svc != nil {
		_, op, _ := strings.Cut(target, ".")
		return Errorf(CodeUnknownOperation, "bridgeport does not support the operation %s (X-Amz-Target %s): it is not an operation of the %s API, "+
			"or not one bridgeport implements; docs/OPERATIONS.md lists those it does.", op, target, svc.SigningName)
	}
	var served []string
	for _, svc := range s.Services {
		served = append(served, svc.TargetPrefix+".<Operation>")
	}
	what := "The request has no X-Amz-Target header"
	if target != "" {
		what = fmt.Sprintf("bridgeport does not serve X-Amz-Target %s", target)
	}
	msg := fmt.Sprintf("%s: the AWS JSON protocol here takes %s.", what, strings.Join(served, ", "))
	if len(s.Query) > 0 {
		msg += " IAM speaks the Query protocol (a form-encoded Action, no X-Amz-Target)."
	}
	return &Error{Code: CodeUnknownOperation, Message: msg}
}
