package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// checkCompact compares Compact with encoding/json: on valid JSON the same
// text, and on invalid JSON never a valid result. Wrapped as a member of an
// object, as PutEvents puts a detail in its envelope, an accepted text is
// valid if and only if it was.
func checkCompact(t *testing.T, s string) {
	t.Helper()
	got, ok := Compact(s)
	if !json.Valid([]byte(s)) {
		if json.Valid([]byte(got)) {
			t.Fatalf("Compact(%q) = %q, %v: invalid JSON made valid", s, got, ok)
		}
		if v := strings.TrimLeft(s, " \t\r\n"); ok && v != "" && (v[0] == '{' || v[0] == '[') && json.Valid([]byte(`{"detail":`+got+`}`)) {
			t.Fatalf("Compact(%q) = %q, true: invalid JSON that makes a valid envelope", s, got)
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
		// Invalid: more than one value, or a bracket closing nothing.
		`{"a":1},"source":"aws.ec2"`,
		`{"a":1}{"b":2}`,
		`{"a":1}x`,
		`[1]]`,
		`}`,
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

// BenchmarkCompact measures a 1 KB detail as Python's json.dumps writes
// it (a space after each colon and comma) and one already compact, against
// what PutEvents did before: a scan for any space, then encoding/json's
// Compact.
func BenchmarkCompact(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"orderId": "o-1", "items": [`)
	for i := range 12 {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(`{"sku": "sku-12345", "qty": 2, "price": 12.5, "name": "A thing"}`)
	}
	sb.WriteString(`], "note": "` + strings.Repeat("x", 150) + `"}`)
	spaced := sb.String()
	var c bytes.Buffer
	_ = json.Compact(&c, []byte(spaced))
	for _, tc := range []struct{ name, s string }{{"spaced", spaced}, {"compact", c.String()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.s)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := Compact(tc.s); !ok {
					b.Fatal("refused")
				}
			}
		})
		b.Run(tc.name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(tc.s)))
			b.ReportAllocs()
			for b.Loop() {
				in := []byte(tc.s)
				if bytes.ContainsAny(in, " \t\r\n") {
					var out bytes.Buffer
					if err := json.Compact(&out, in); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
