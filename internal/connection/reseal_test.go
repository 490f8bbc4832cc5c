package connection

import (
	"testing"

	"bridgeport/internal/secretbox"
)

// TestResealConnection: a rotation reaches every sealed value of a
// connection, leaves the values already sealed with the new key and the
// parameters not marked secret alone, and reports a value that opens with
// neither key.
func TestResealConnection(t *testing.T) {
	t.Parallel()
	from, _ := secretbox.New([]byte("the previous key, 32 bytes long."))
	to, _ := secretbox.New([]byte("the new key, 32 bytes long......"))
	third, _ := secretbox.New([]byte("a third key, 32 bytes long......"))
	params := func() *Params {
		return &Params{Header: []Param{{Key: "h", Value: from.Seal("header secret"), Secret: true}, {Key: "plain", Value: "not sealed"}},
			Query: []Param{{Key: "q", Value: to.Seal("query secret"), Secret: true}},
			Body:  []Param{{Key: "b", Value: from.Seal("body secret"), Secret: true}}}
	}
	c := Connection{Basic: &BasicAuth{Username: "u", SealedPassword: from.Seal("password")},
		APIKey:     &APIKey{Name: "k", SealedValue: from.Seal("api key")},
		OAuth:      &OAuth{ClientID: "id", SealedClientSecret: from.Seal("client secret"), Params: params()},
		Invocation: params()}
	n, lost := c.reseal(from, to)
	if n != 7 || lost {
		t.Fatalf("resealed %d values (lost %v), want 7: every value sealed with the previous key", n, lost)
	}
	for _, p := range c.sealed() {
		if _, err := to.Open(*p); err != nil {
			t.Errorf("a value does not open with the new key: %v", err)
		}
	}
	if c.Invocation.Header[1].Value != "not sealed" {
		t.Errorf("a parameter not marked secret changed: %q", c.Invocation.Header[1].Value)
	}
	if n, lost := c.reseal(from, to); n != 0 || lost {
		t.Errorf("a second rotation changed %d values (lost %v), want none", n, lost)
	}
	c.APIKey.SealedValue = third.Seal("sealed with neither")
	if _, lost := c.reseal(from, to); !lost {
		t.Error("a value that opens with neither key is not reported")
	}
}
