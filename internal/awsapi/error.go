package awsapi

import (
	"fmt"
	"net/http"
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
)
