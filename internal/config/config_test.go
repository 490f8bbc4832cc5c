package config

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"BRIDGEPORT_REGION":                 "eu-west-1",
		"BRIDGEPORT_LISTEN":                 "127.0.0.1:1",
		"BRIDGEPORT_RETRY_BASE_DELAY":       "50ms",
		"BRIDGEPORT_MAX_RULES_PER_BUS":      "7",
		"BRIDGEPORT_SYNC_ALWAYS":            "true",
		"BRIDGEPORT_READ_TIMEOUT":           "30s",
		"BRIDGEPORT_MAX_CLIENT_CONNECTIONS": "2000",
	}
	c, _, err := Parse("serve", []string{"--listen", "127.0.0.1:9"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	// The command line wins over the environment, which wins over defaults.
	if c.Listen != "127.0.0.1:9" || c.Region != "eu-west-1" || c.RetryBaseDelay != 50*time.Millisecond ||
		c.Quotas.RulesPerBus != 7 || !c.SyncAlways || c.AccountID != "000000000000" || c.Quotas.TargetsPerRule != 5 ||
		c.Clients.ReadTimeout != 30*time.Second || c.Clients.MaxConnections != 2000 || c.Clients.ReadHeaderTimeout != 10*time.Second ||
		c.Clients.MaxBodyBytesInFlight != 64<<20 {
		t.Errorf("Parse = %+v", c)
	}
	if got := EnvName("max-event-size"); got != "BRIDGEPORT_MAX_EVENT_SIZE" {
		t.Errorf("EnvName = %s", got)
	}
	for _, args := range [][]string{{"--retry-base-delay", "1h", "--retry-max-delay", "1m"}, {"--log-level", "loud"}, {"--listen", "nohost"}, {"--max-event-size", "10"},
		{"--read-timeout", "5s"}, {"--idle-timeout", "0s"}, {"--max-client-connections", "-1"}, {"--max-body-bytes-in-flight", "0"}, {"--previous-secret-key", "a2V5", "--replace-secret-key"}} {
		if _, _, err := Parse("serve", args, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("Parse(%v) = %v, want an error naming the flag", args, err)
		}
	}
}

// TestUsage: serve -h describes the limits as they are enforced.
func TestUsage(t *testing.T) {
	t.Parallel()
	_, fs, err := Parse("serve", nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	// The size limit applies to a request's entries together
	// (eventbus/putevents.go), not to each entry.
	if u := fs.Lookup("max-event-size").Usage; !strings.Contains(u, "of one PutEvents request together") || strings.Contains(u, "entry") {
		t.Errorf("--max-event-size: %q", u)
	}
}

func TestBytes(t *testing.T) {
	for in, want := range map[string]int64{"268435456": 268435456, "256MiB": 256 << 20, "1GB": 1e9, "2 GiB": 2 << 30, "512KiB": 512 << 10, "10B": 10} {
		var b Bytes
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "MiB", "1.5GiB", "12XB"} {
		var b Bytes
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, b)
		}
	}
}
