package secretbox

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	sealed := b.Seal("hunter2")
	if strings.Contains(sealed, "hunter2") || sealed == b.Seal("hunter2") {
		t.Errorf("sealed text %q reveals the secret or repeats", sealed)
	}
	// The same key from the directory opens it.
	b2, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Open(sealed); err != nil || got != "hunter2" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Another key does not, and tampering is detected.
	other, _ := Load("", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if _, err := other.Open(sealed); err == nil {
		t.Error("opened with another key")
	}
	raw, _ := base64.StdEncoding.DecodeString(sealed)
	raw[len(raw)-1] ^= 1
	if _, err := b.Open(base64.StdEncoding.EncodeToString(raw)); err == nil {
		t.Error("opened tampered text")
	}
	for _, bad := range []string{"", "!!", "AAAA"} {
		if _, err := b.Open(bad); err == nil {
			t.Errorf("opened %q", bad)
		}
	}
	if _, err := Load("", "bm90IDMyIGJ5dGVz"); err == nil {
		t.Error("accepted a short key")
	}
}

// TestFingerprint: the same key has the same fingerprint, another key
// another one, and the fingerprint holds neither the key nor its plain
// hash.
func TestFingerprint(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	a, _ := New(key)
	b, _ := New(append([]byte(nil), key...))
	other, _ := New(make([]byte, 32))
	if a.Fingerprint() != b.Fingerprint() || len(a.Fingerprint()) != 64 {
		t.Errorf("fingerprints of one key: %q, %q", a.Fingerprint(), b.Fingerprint())
	}
	if a.Fingerprint() == other.Fingerprint() {
		t.Error("two keys have the same fingerprint")
	}
	sum := sha256.Sum256(key)
	for _, leak := range []string{hex.EncodeToString(key), hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(key)} {
		if strings.Contains(a.Fingerprint(), leak) {
			t.Errorf("the fingerprint holds %q", leak)
		}
	}
}
