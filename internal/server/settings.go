package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"bridgeport/internal/config"
	"bridgeport/internal/secretbox"
	"bridgeport/internal/store"
)

// clusterSettings are the settings every node sharing a store must have
// alike, as the store checks them when it opens (store/settings.go): the
// secret key (by its fingerprint), the region and the account, which
// stored data depends on; and the quotas and the endpoint permissions,
// which would otherwise make a node accept what another refuses, or
// dead-letter what another delivers. The store adds its replicas and the
// attempt log's limits. Per node: the listener, the data directory, the
// root credentials, the retry backoff, the match timeout, the extra CA
// file, logging and the shutdown grace.
func clusterSettings(cfg config.Config, box *secretbox.Box) []store.Setting {
	q := cfg.Quotas
	return []store.Setting{
		{Name: "secret-key", Value: box.Fingerprint(), Fixed: true},
		{Name: "region", Value: cfg.Region, Fixed: true},
		{Name: "account-id", Value: cfg.AccountID, Fixed: true},
		{Name: "allow-private-endpoints", Value: strconv.FormatBool(cfg.AllowPrivateEndpoints)},
		{Name: "allow-http-endpoints", Value: strconv.FormatBool(cfg.AllowHTTPEndpoints)},
		{Name: "max-event-buses", Value: strconv.Itoa(q.EventBuses)},
		{Name: "max-rules-per-bus", Value: strconv.Itoa(q.RulesPerBus)},
		{Name: "max-targets-per-rule", Value: strconv.Itoa(q.TargetsPerRule)},
		{Name: "max-pattern-size", Value: strconv.Itoa(q.PatternSize)},
		{Name: "max-wildcard-rules", Value: strconv.Itoa(q.WildcardRules)},
		{Name: "max-connections", Value: strconv.Itoa(q.Connections)},
		{Name: "max-api-destinations", Value: strconv.Itoa(q.ApiDestinations)},
		{Name: "max-event-size", Value: strconv.Itoa(q.EventSize)},
	}
}

// settingsError explains a refusal by the store: for each setting, the
// flag and variable to fix, and how. It never shows the secret key, only
// the start of its fingerprint.
func settingsError(e *store.SettingsError, cfg config.Config) error {
	whose := "the cluster's"
	if cfg.NATSURL == "" {
		whose = "those the store in " + cfg.DataDir + " was created with"
	}
	lines := []string{"this node's settings differ from " + whose + ", so it does not start (it changed nothing):"}
	for _, m := range e.Mismatches {
		flag := fmt.Sprintf("--%s (%s)", m.Name, config.EnvName(m.Name))
		var fix string
		switch {
		case e.NodesAlive > 0:
			fix = fmt.Sprintf("not replaced while %d other nodes are running: stop them first", e.NodesAlive)
		case m.Name == "secret-key":
			fix = fmt.Sprintf("not the key the stored connection secrets are sealed with (key fingerprint here %s, recorded %s); "+
				"set BRIDGEPORT_SECRET_KEY to that key", m.Value[:8], m.Cluster[:min(8, len(m.Cluster))])
			if cfg.SecretKey == "" {
				fix += fmt.Sprintf(" (this node uses a key generated in %s/%s, as BRIDGEPORT_SECRET_KEY is not set)", cfg.DataDir, secretbox.KeyFile)
			}
		case m.Fixed:
			fix = fmt.Sprintf("%s here, %s recorded: every node must use the recorded value", m.Value, m.Cluster)
		default:
			fix = fmt.Sprintf("%s here, %s recorded: use the recorded value, or, to change it for every node, "+
				"restart them one by one with the new value, the first with --change-cluster-settings", m.Value, m.Cluster)
		}
		lines = append(lines, "  "+flag+": "+fix)
	}
	return errors.New(strings.Join(lines, "\n"))
}
