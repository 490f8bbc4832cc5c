// Package secretbox encrypts secrets at rest (connection passwords, API key
// values, OAuth client secrets, parameters marked secret) with AES-256-GCM
// under one key, kept in the data directory with mode 0600 or given in the
// environment so that every node of a cluster shares it.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the key's file name in the data directory.
const KeyFile = "secret.key"

// Box seals and opens secrets. Safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	fp   string
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(fingerprintLabel))
	return &Box{aead: aead, fp: hex.EncodeToString(mac.Sum(nil))}, nil
}

// fingerprintLabel is what a key's fingerprint authenticates.
const fingerprintLabel = "bridgeport secret-key fingerprint v1"

// Fingerprint names the key without revealing it: the HMAC-SHA256 of a
// fixed label under the key, in hex. Boxes with the same key have the same
// fingerprint; it tells nothing of the key that could help find it.
func (b *Box) Fingerprint() string { return b.fp }

// Load returns the Box for the key in encoded (base64 of 32 bytes) if it is
// not empty, else for the key in dir, generating it on first use.
func Load(dir, encoded string) (*Box, error) {
	if encoded != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
		if err != nil {
			return nil, errors.New("secret key: not base64")
		}
		return New(key)
	}
	path := filepath.Join(dir, KeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if derr != nil {
			return nil, fmt.Errorf("%s: not base64", path)
		}
		return New(key)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	return New(key)
}

// Seal encrypts a secret; the result is base64 text, safe to store in JSON.
func (b *Box) Seal(plain string) string {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return base64.StdEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(plain), nil))
}

// Open decrypts what Seal returned.
func (b *Box) Open(sealed string) (string, error) {
	data, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(data) < b.aead.NonceSize() {
		return "", errors.New("sealed secret is malformed")
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, data[:n], data[n:], nil)
	if err != nil {
		return "", errors.New("sealed secret does not open with this key")
	}
	return string(plain), nil
}

// Reseal seals again with to each sealed value that opens with from (a
// key rotation) and returns how many; values that already open with to,
// and empty ones, are left alone; lost reports a value that opens with
// neither.
func Reseal(values []*string, from, to *Box) (n int, lost bool) {
	for _, p := range values {
		if *p == "" {
			continue
		}
		if _, err := to.Open(*p); err == nil {
			continue
		}
		plain, err := from.Open(*p)
		if err != nil {
			lost = true
			continue
		}
		*p = to.Seal(plain)
		n++
	}
	return n, lost
}
