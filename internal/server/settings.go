package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"bridgeport/internal/config"
	"bridgeport/internal/connection"
	"bridgeport/internal/iam"
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
//
// The key changes only on purpose: with the previous key (a rotation) or
// with --replace-secret-key (a key that was lost).
func clusterSettings(cfg config.Config, box, previous *secretbox.Box) []store.Setting {
	q := cfg.Quotas
	key := store.Setting{Name: "secret-key", Value: box.Fingerprint(), Fixed: true}
	switch {
	case previous != nil:
		key.Replaces = previous.Fingerprint()
	case cfg.ReplaceSecretKey:
		key.Replaces = store.ReplaceAny
	}
	return []store.Setting{
		key,
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
		{Name: "max-archives", Value: strconv.Itoa(q.Archives)},
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
			fix = fmt.Sprintf("not replaced while other nodes are running (%d found): stop them first", e.NodesAlive)
		case m.Name == "secret-key":
			fix = fmt.Sprintf("not the key the stored connection secrets are sealed with (key fingerprint here %s, recorded %s); "+
				"set BRIDGEPORT_SECRET_KEY to that key, or rotate the cluster's key with BRIDGEPORT_PREVIOUS_SECRET_KEY set to it", m.Value[:8], m.Cluster[:min(8, len(m.Cluster))])
			if cfg.PreviousSecretKey != "" {
				fix += " (BRIDGEPORT_PREVIOUS_SECRET_KEY is not that key either)"
			}
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

// changeKey finishes a change of the secret key the store recorded:
// with the previous key, it seals every connection secret again with the
// new one (again at each start with the previous key, so an interrupted
// rotation is finished); without it, secrets sealed with the lost key stay
// unreadable until their connections get their credentials again.
func changeKey(ctx context.Context, st *store.Store, box, previous *secretbox.Box, log *slog.Logger) error {
	replaced := slices.Contains(st.Replaced(), "secret-key")
	if previous == nil {
		if replaced {
			log.Warn("secret key replaced: connections sealed with the previous key cannot be opened until they are updated with their credentials")
		}
		return nil
	}
	changed, unreadable, err := connection.Reseal(ctx, st, previous, box)
	if err != nil {
		return fmt.Errorf("seal connection secrets with the new key: %w", err)
	}
	keys, lostKeys, err := iam.Reseal(ctx, st, previous, box)
	if err != nil {
		return fmt.Errorf("seal access key secrets with the new key: %w", err)
	}
	log.Info("connection and access key secrets sealed with the new secret key", "replaced", replaced, "connections", changed,
		"unreadable", unreadable, "access_keys", keys, "unreadable_access_keys", lostKeys)
	return nil
}
