package awsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Decode decodes a JSON request body into v. An empty body is an empty
// object. Malformed JSON and values of the wrong type are a
// SerializationException, as AWS JSON services report them; unknown members
// are ignored, as AWS does.
func Decode(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if body[0] != '{' {
		return &Error{Code: CodeSerialization, Message: "Start of structure or map expected."}
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		// UNVERIFIED wording: AWS's messages name Java classes; this names
		// the member and the JSON type that was found instead.
		field := typeErr.Field
		if field == "" {
			field = "the request"
		}
		return &Error{Code: CodeSerialization, Message: fmt.Sprintf("Unexpected %s at '%s'.", typeErr.Value, field)}
	}
	var aerr *Error
	if errors.As(err, &aerr) {
		return aerr
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return &Error{Code: CodeSerialization, Message: fmt.Sprintf("Malformed JSON at offset %d: %s.", syn.Offset, syn.Error())}
	}
	return &Error{Code: CodeSerialization, Message: "Malformed request body."}
}

// Time is a timestamp in AWS JSON protocols: seconds since the epoch, with a
// fraction, as a JSON number.
type Time struct{ time.Time }

// MarshalJSON encodes t as epoch seconds with millisecond precision.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

// UnmarshalJSON accepts epoch seconds (what the SDKs send) or an RFC 3339
// string.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return &Error{Code: CodeSerialization, Message: fmt.Sprintf("Invalid timestamp '%s'.", s)}
		}
		t.Time = v
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
		return &Error{Code: CodeSerialization, Message: fmt.Sprintf("Invalid timestamp %s.", b)}
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
	return nil
}
