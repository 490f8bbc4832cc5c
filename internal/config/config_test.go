package config

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"BRIDGEPORT_REGION":            "eu-west-1",
		"BRIDGEPORT_LISTEN":            "127.0.0.1:1",
		"BRIDGEPORT_RETRY_BASE_DELAY":  "50ms",
		"BRIDGEPORT_MAX_RULES_PER_BUS": "7",
		"BRIDGEPORT_SYNC_ALWAYS":       "true",
	}
	c, _, err := Parse("serve", []string{"--listen", "127.0.0.1:9"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	// The command line wins over the environment, which wins over defaults.
	if c.Listen != "127.0.0.1:9" || c.Region != "eu-west-1" || c.RetryBaseDelay != 50*time.Millisecond ||
		c.Quotas.RulesPerBus != 7 || !c.SyncAlways || c.AccountID != "000000000000" || c.Quotas.TargetsPerRule != 5 {
		t.Errorf("Parse = %+v", c)
	}
	if got := EnvName("max-event-size"); got != "BRIDGEPORT_MAX_EVENT_SIZE" {
		t.Errorf("EnvName = %s", got)
	}
	for _, args := range [][]string{{"--retry-base-delay", "1h", "--retry-max-delay", "1m"}, {"--log-level", "loud"}, {"--listen", "nohost"}, {"--max-event-size", "10"},
		{"--previous-secret-key", "a2V5", "--replace-secret-key"}} {
		if _, _, err := Parse("serve", args, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("Parse(%v) = %v, want an error naming the flag", args, err)
		}
	}
}
