package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// userServer is `bridgeport serve` with one access key, as a user runs it,
// with SDK clients signed with that key and the environment that gives the
// key to the CLI's client commands.
type userServer struct {
	base   string
	eb     *eventbridge.Client
	sq     *awssqs.Client
	getenv func(string) string // AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
}

// runUserServer starts a userServer, stopped when the test ends; args are
// more flags for serve.
func runUserServer(t *testing.T, key, secret string, args ...string) *userServer {
	t.Helper()
	env := map[string]string{"BRIDGEPORT_LISTEN": "127.0.0.1:0", "BRIDGEPORT_DATA_DIR": t.TempDir(),
		"BRIDGEPORT_ACCESS_KEY_ID": key, "BRIDGEPORT_SECRET_ACCESS_KEY": secret}
	base, _, _, stop := runServe(t, env, args...)
	t.Cleanup(func() { stop() })
	creds := credentials.NewStaticCredentialsProvider(key, secret, "")
	clientEnv := map[string]string{"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
	return &userServer{
		base:   base,
		eb:     eventbridge.New(eventbridge.Options{BaseEndpoint: aws.String(base), Region: "us-east-1", Credentials: creds}),
		sq:     awssqs.New(awssqs.Options{BaseEndpoint: aws.String(base), Region: "us-east-1", Credentials: creds}),
		getenv: func(k string) string { return clientEnv[k] },
	}
}

// runServe starts `bridgeport serve` and returns its base URL, its output,
// and a function that stops it and returns the exit code.
func runServe(t *testing.T, env map[string]string, args ...string) (string, *syncBuffer, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, args, stdout, stderr, func(k string) string { return env[k] })
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if m := listenRE.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], stdout, stderr, func() int { cancel(); return <-done }
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s %s", code, stdout, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s %s", stdout, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Flags come from the environment too; the command line wins.
	env := map[string]string{"BRIDGEPORT_DATA_DIR": dir, "BRIDGEPORT_LISTEN": "127.0.0.1:1"}
	base, stdout, stderr, stop := runServe(t, env, "--listen", "127.0.0.1:0")
	out := stdout.String()
	m := regexp.MustCompile(`AWS_SECRET_ACCESS_KEY=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("first start printed no credentials: %s", out)
	}
	secret := m[1]
	info, err := os.Stat(filepath.Join(dir, "credentials.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", info, err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s = %d", path, resp.StatusCode)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged: %s", stderr)
	}

	// The second start reuses the credentials and does not print them.
	_, stdout2, stderr2, stop2 := runServe(t, env, "--listen", "127.0.0.1:0")
	if code := stop2(); code != 0 {
		t.Fatalf("second exit code %d", code)
	}
	for name, s := range map[string]string{"stdout": stdout2.String(), "stderr": stderr2.String() + stderr.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the secret key: %s", name, s)
		}
	}
}

func TestServeBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--region", "Mars"},
		{"--account-id", "12"},
		{"--access-key-id", "AKIA"},
		{"--max-pattern-size", "5000"},
		{"--nope"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		code := serve(context.Background(), args, &stdout, &stderr, func(string) string { return "" })
		if code != 2 || stderr.Len() == 0 {
			t.Errorf("serve %v = %d, stderr %q", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := serve(context.Background(), nil, &stdout, &stderr, func(k string) string {
		if k == "BRIDGEPORT_MAX_RULES_PER_BUS" {
			return "many"
		}
		return ""
	}); code != 2 || !strings.Contains(stderr.String(), "BRIDGEPORT_MAX_RULES_PER_BUS") {
		t.Errorf("bad environment value: %d %q", code, stderr.String())
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "bridgeport ") {
		t.Errorf("version: %d %q", code, stdout.String())
	}
	if code := Main(context.Background(), []string{"frobnicate"}, &stdout, &stderr); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
}
