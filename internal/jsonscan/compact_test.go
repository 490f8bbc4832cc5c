package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// checkCompact compares Compact with encoding/json: on valid JSON the same
// text, and on invalid JSON never a valid result.
func checkCompact(t *testing.T, s string) {
	t.Helper()
	got, ok := Compact(s)
	if !json.Valid([]byte(s)) {
		if json.Valid([]byte(got)) {
			t.Fatalf("Compact(%q) = %q, %v: invalid JSON made valid", s, got, ok)
		}
		return
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(s)); err != nil {
		t.Fatal(err)
	}
	if !ok || got != want.String() {
		t.Fatalf("Compact(%q) = %q, %v, want %q, true", s, got, ok, want.String())
	}
}

func TestCompact(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		``,
		`{}`,
		` { } `,
		`{"a": 1, "b": [1, 2, {"c" : "d e"}], "f":"g\"  h\\", "i": null}`,
		"{\n\t\"a\" :\r\n true\n}\n",
		`{"pad":"` + strings.Repeat("x y ", 300) + `"}`,
		`{"a":"\u0020 \" "}`,
		// Invalid: whitespace between two values, which removing would join.
		`{"a": 1 2}`,
		`{"a": "b" "c"}`,
		`{"a": tr ue}`,
		`[1 -2]`,
		`{"a":1} {"b":2}`,
		// Invalid in other ways: whatever Compact does, not valid after.
		`{"a": "b`,
		"{\"a\": \"b\nc\"}",
		`{"a": "b\`,
		"{\"a\":\v1}",
	} {
		checkCompact(t, s)
	}
}

// TestCompactKeepsCompact checks that text with nothing to drop is returned
// as it is, without allocating.
func TestCompactKeepsCompact(t *testing.T) {
	s := `{"a":"b c","d":[1,2,{"e":null}]}`
	if n := testing.AllocsPerRun(100, func() {
		if got, ok := Compact(s); got != s || !ok {
			t.Fatalf("Compact(%q) = %q, %v", s, got, ok)
		}
	}); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

func FuzzCompact(f *testing.F) {
	for _, s := range []string{`{"a": 1, "b": [1, 2]}`, `{"a":"b c"}`, `[1 2]`, "{\"a\":\t\"\\\"\" }"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkCompact(t, s)
	})
}
