package awsapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// putEventsBody is a PutEvents request of 10 entries of about 1 KB.
func putEventsBody() []byte {
	var b strings.Builder
	b.WriteString(`{"Entries":[`)
	for i := range 10 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Source":"shop","DetailType":"OrderPlaced","Detail":"{\"orderId\":\"o-%d\",\"note\":\"%s\"}"}`, i, strings.Repeat("x", 950))
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkVerify measures checking the SigV4 signature of a 10 KB
// PutEvents request (canonical request, body hash, key derivation, HMAC).
func BenchmarkVerify(b *testing.B) {
	body := putEventsBody()
	req, _ := http.NewRequest("POST", "http://127.0.0.1:4010/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSEvents.PutEvents")
	Sign(req, body, sigKey, sigSecret, "us-east-1", "events", sigNow)
	v := testVerifier()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(req, body, "events"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode measures decoding a 10-entry PutEvents body.
func BenchmarkDecode(b *testing.B) {
	body := putEventsBody()
	type entry struct {
		Source, DetailType, Detail *string
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var in struct{ Entries []entry }
		if err := Decode(body, &in); err != nil || len(in.Entries) != 10 {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBody measures reading a 10-entry PutEvents body into its
// buffer within the Budget.
func BenchmarkReadBody(b *testing.B) {
	body := putEventsBody()
	s := &Server{Budget: NewBudget(64 << 20)}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", "http://127.0.0.1:4010/", bytes.NewReader(body))
		got, held, err := s.readBody(httptest.NewRecorder(), req, 1<<20)
		if err != nil || len(got) != len(body) {
			b.Fatal(err)
		}
		s.Budget.release(held)
	}
}
