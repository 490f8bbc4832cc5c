package secretbox

import (
	"encoding/base64"
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
