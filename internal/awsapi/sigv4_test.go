package awsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigKey    = "AKIDEXAMPLE"
	sigSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

var sigNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testVerifier() *Verifier {
	return &Verifier{
		Region: "us-east-1",
		Lookup: func(id string) (Key, bool) {
			if id == sigKey {
				return Key{Secret: sigSecret}, true
			}
			return Key{}, false
		},
		Now: func() time.Time { return sigNow },
	}
}

// signed builds a request signed by the real AWS SDK signer.
func signed(t *testing.T, body, key, secret, service, region string, at time.Time, mutate func(*http.Request)) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://127.0.0.1:4010/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSEvents.ListRules")
	if mutate != nil {
		mutate(req)
	}
	sum := sha256.Sum256([]byte(body))
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), service, region, at)
	if err != nil {
		t.Fatal(err)
	}
	return req, []byte(body)
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	v := testVerifier()
	for _, tc := range []struct {
		name   string
		mutate func(*http.Request)
	}{
		{"plain", nil},
		{"query string", func(r *http.Request) { r.URL.RawQuery = "b=2&a=1&a=0&sp=x%20y" }},
		{"path", func(r *http.Request) { r.URL.Path = "/000000000000/my queue" }},
		{"extra headers", func(r *http.Request) { r.Header.Set("X-Custom", "  a   b  ") }},
		{"within skew", nil},
	} {
		req, body := signed(t, `{"NamePrefix":"x"}`, sigKey, sigSecret, "events", "us-east-1", sigNow.Add(-14*time.Minute), tc.mutate)
		id, err := v.Verify(req, body, "events")
		if err != nil || id.AccessKeyID != sigKey {
			t.Errorf("%s: Verify = %v, %v", tc.name, id, err)
		}
	}
}

// TestVerifyRefuses is the table of tampered requests.
func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	v := testVerifier()
	body := `{"NamePrefix":"x"}`
	for _, tc := range []struct {
		name    string
		req     func() (*http.Request, []byte)
		failure AuthFailure
		json    string
		query   string
	}{
		{"body changed", func() (*http.Request, []byte) {
			r, _ := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			return r, []byte(`{"NamePrefix":"y"}`)
		}, AuthMismatch, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"signed header changed", func() (*http.Request, []byte) {
			r, b := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			r.Header.Set("X-Amz-Target", "AWSEvents.DeleteRule")
			return r, b
		}, AuthMismatch, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"host changed", func() (*http.Request, []byte) {
			r, b := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			r.Host = "evil.example:4010"
			return r, b
		}, AuthMismatch, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"wrong secret", func() (*http.Request, []byte) {
			return signed(t, body, sigKey, "not-the-secret", "events", "us-east-1", sigNow, nil)
		}, AuthMismatch, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"payload hash header lies", func() (*http.Request, []byte) {
			r, b := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			r.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64))
			return r, b
		}, AuthMismatch, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"16 minutes old", func() (*http.Request, []byte) {
			return signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow.Add(-16*time.Minute), nil)
		}, AuthExpired, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"16 minutes ahead", func() (*http.Request, []byte) {
			return signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow.Add(16*time.Minute), nil)
		}, AuthExpired, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"wrong region", func() (*http.Request, []byte) {
			return signed(t, body, sigKey, sigSecret, "events", "eu-west-1", sigNow, nil)
		}, AuthScope, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"wrong service", func() (*http.Request, []byte) {
			return signed(t, body, sigKey, sigSecret, "sqs", "us-east-1", sigNow, nil)
		}, AuthScope, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"unknown key", func() (*http.Request, []byte) {
			return signed(t, body, "AKIDUNKNOWN", sigSecret, "events", "us-east-1", sigNow, nil)
		}, AuthUnknownKey, "UnrecognizedClientException", "InvalidClientTokenId"},
		{"unsigned", func() (*http.Request, []byte) {
			r, b := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			r.Header.Del("Authorization")
			return r, b
		}, AuthMissing, "MissingAuthenticationTokenException", "MissingAuthenticationToken"},
		{"garbage authorization", func() (*http.Request, []byte) {
			r, b := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			r.Header.Set("Authorization", "Bearer abc")
			return r, b
		}, AuthIncomplete, "IncompleteSignatureException", "IncompleteSignature"},
		{"no date", func() (*http.Request, []byte) {
			r, b := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			r.Header.Del("X-Amz-Date")
			return r, b
		}, AuthIncomplete, "IncompleteSignatureException", "IncompleteSignature"},
		{"credential date differs", func() (*http.Request, []byte) {
			r, b := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261122/", "/20261121/", 1))
			return r, b
		}, AuthScope, "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"host not signed", func() (*http.Request, []byte) {
			r, b := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=content-length;content-type;host;", "SignedHeaders=content-length;content-type;", 1))
			return r, b
		}, AuthMismatch, "InvalidSignatureException", "SignatureDoesNotMatch"},
	} {
		req, b := tc.req()
		_, err := v.Verify(req, b, "events")
		var aerr *AuthError
		if !errors.As(err, &aerr) || aerr.Failure != tc.failure {
			t.Errorf("%s: Verify = %v, want failure %d", tc.name, err, tc.failure)
			continue
		}
		if got := aerr.JSONError().Code; got != tc.json {
			t.Errorf("%s: JSON code %s, want %s", tc.name, got, tc.json)
		}
		if got := aerr.QueryError().Code; got != tc.query {
			t.Errorf("%s: Query code %s, want %s", tc.name, got, tc.query)
		}
		if strings.Contains(aerr.Message, sigSecret) {
			t.Errorf("%s: message reveals the secret", tc.name)
		}
		// Everything but the signature itself is checked before the
		// body is read.
		early := tc.failure != AuthMismatch || tc.name == "host not signed"
		if _, err := v.CheckHeaders(req, "events", "us-east-1"); (err != nil) != early {
			t.Errorf("%s: CheckHeaders = %v, want a refusal: %v", tc.name, err, early)
		}
	}
}

func FuzzAuthorizationHeader(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/events/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request,SignedHeaders=host,Signature=00",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 ,,,",
		"AWS4-HMAC-SHA256 Credential=//////",
		"Bearer x",
		"",
	} {
		f.Add(s, "20261122T120000Z")
	}
	v := testVerifier()
	f.Fuzz(func(t *testing.T, auth, date string) {
		req, err := http.NewRequest("POST", "http://127.0.0.1:4010/", bytes.NewReader(nil))
		if err != nil {
			t.Skip()
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Date", date)
		_, err = v.Verify(req, nil, "events")
		var aerr *AuthError
		if err == nil || !errors.As(err, &aerr) || aerr.Message == "" {
			t.Fatalf("Verify(%q, %q) = %v", auth, date, err)
		}
	})
}

// TestSign checks bridgeport's signer against the AWS SDK's and against
// the verifier.
func TestSign(t *testing.T) {
	t.Parallel()
	body := []byte(`{"QueueUrl":"http://127.0.0.1:4010/000000000000/dlq"}`)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	newReq := func() *http.Request {
		r, _ := http.NewRequest("POST", "http://127.0.0.1:4010/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-amz-json-1.0")
		r.Header.Set("X-Amz-Target", "AmazonSQS.ReceiveMessage")
		return r
	}
	ours := newReq()
	Sign(ours, body, "AKIDEXAMPLE", "secret", "us-east-1", "sqs", now)
	sdk := newReq()
	sum := sha256.Sum256(body)
	sdk.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}, sdk,
		hex.EncodeToString(sum[:]), "sqs", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	if got, want := ours.Header.Get("Authorization"), sdk.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization\n got %s\nwant %s", got, want)
	}
	v := &Verifier{Region: "us-east-1", Now: func() time.Time { return now },
		Lookup: func(id string) (Key, bool) { return Key{Secret: "secret"}, id == "AKIDEXAMPLE" }}
	if _, err := v.Verify(ours, body, "sqs"); err != nil {
		t.Errorf("verify: %v", err)
	}
}
