package awsapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	type in struct {
		Name  *string `json:"Name"`
		Limit *int    `json:"Limit"`
		When  *Time   `json:"When"`
	}
	for _, tc := range []struct {
		body string
		code string
	}{
		{``, ""},
		{`{}`, ""},
		{`{"Name":"x","Unknown":[1,2]}`, ""},
		{`{"When":1700000000.25}`, ""},
		{`{"When":"2026-01-02T03:04:05Z"}`, ""},
		{`{"Name":1}`, CodeSerialization},
		{`{"Limit":"x"}`, CodeSerialization},
		{`{"Limit":1.5}`, CodeSerialization},
		{`{"Name":`, CodeSerialization},
		{`[1]`, CodeSerialization},
		{`"x"`, CodeSerialization},
		{`{"When":"yesterday"}`, CodeSerialization},
		{`{"When":1e300}`, CodeSerialization},
		{`{"a":1}{"b":2}`, CodeSerialization},
	} {
		var v in
		err := Decode([]byte(tc.body), &v)
		if tc.code == "" {
			if err != nil {
				t.Errorf("Decode(%s) = %v", tc.body, err)
			}
			continue
		}
		var aerr *Error
		if !errors.As(err, &aerr) || aerr.Code != tc.code || aerr.Message == "" {
			t.Errorf("Decode(%s) = %v, want %s", tc.body, err, tc.code)
		}
	}
}

func TestTime(t *testing.T) {
	t.Parallel()
	tm := Time{time.Date(2026, 11, 22, 10, 0, 0, 250_000_000, time.UTC)}
	b, _ := json.Marshal(tm)
	if string(b) != "1795341600.25" {
		t.Errorf("Marshal = %s", b)
	}
	var back Time
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(tm.Time) {
		t.Errorf("round trip = %v, %v", back, err)
	}
}

func TestViolations(t *testing.T) {
	t.Parallel()
	var v Violations
	if v.Err() != nil {
		t.Fatal("no violations must be no error")
	}
	v.Add("!@#$@!#$", "targets.1.member.id", MatchPattern(`[\.\-_A-Za-z0-9]+`))
	if got := v.Err().Message; got != `1 validation error detected: Value '!@#$@!#$' at 'targets.1.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_A-Za-z0-9]+` {
		t.Errorf("one violation: %s", got)
	}
	v.Add(nil, "name", MustNotBeNull)
	got := v.Err().Message
	if !strings.HasPrefix(got, "2 validation errors detected: Value '!@#$@!#$'") || !strings.HasSuffix(got, "; Value null at 'name' failed to satisfy constraint: Member must not be null") {
		t.Errorf("two violations: %s", got)
	}
}
