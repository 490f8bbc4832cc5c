package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// The cluster's settings: what every node sharing a store must have alike
// to serve it correctly (the key that seals connection secrets, the region
// and account of every ARN, the quotas, ...). The first node records them
// in the configuration bucket; every node that opens the store checks its
// own against the record before it writes anything else, and a node whose
// settings differ is refused: it changes nothing.
const settingsKey = "cluster.settings"

// Names of the settings the store itself adds to the caller's: serve's
// flags, as the caller names every setting.
const (
	SettingReplicas        = "replicas"
	SettingAttemptsMaxAge  = "attempt-log-max-age"
	SettingAttemptsMaxSize = "attempt-log-max-bytes"
)

// Setting is one setting the nodes must share.
type Setting struct {
	// Name is serve's flag, without its dashes.
	Name string
	// Value is what is compared: the setting's value, or a fingerprint of
	// a secret.
	Value string
	// Fixed settings never change once recorded: what is stored depends on
	// them. The others change when a node is opened with
	// Config.ChangeSettings, and whenever the embedded engine opens (it has
	// one node, which restarts with what settings it likes).
	Fixed bool
	// Replaces, on a fixed setting, lets this node record its value in
	// place of the cluster's when the cluster's is Replaces (any value, for
	// ReplaceAny): a deliberate change, such as a key rotation. Open
	// refuses it while another node is alive; Replaced reports it.
	Replaces string
}

// ReplaceAny lets a setting replace whatever value the cluster has.
const ReplaceAny = "*"

// Mismatch is a setting of this node's that differs from the cluster's.
type Mismatch struct {
	Setting
	Cluster string // the cluster's value
}

// SettingsError refuses a node whose settings differ from the cluster's.
type SettingsError struct {
	Mismatches []Mismatch
	// NodesAlive, when not zero, is why a replaceable setting was not
	// replaced: other nodes are running.
	NodesAlive int
}

func (e *SettingsError) Error() string {
	var names []string
	for _, m := range e.Mismatches {
		names = append(names, "--"+m.Name)
	}
	msg := "this node's settings differ from the cluster's: " + strings.Join(names, ", ")
	if e.NodesAlive > 0 {
		msg += fmt.Sprintf(" (not replaced: %d other nodes are running)", e.NodesAlive)
	}
	return msg
}

// checkSettings compares this node's settings with the cluster's record,
// creating the record (and the configuration bucket) on a new store, and
// recording settings the record lacks or that this node may change. A
// node left to choose its replicas takes the cluster's. It returns a
// *SettingsError, having written nothing, when the settings differ.
func (s *Store) checkSettings(ctx context.Context) error {
	kv, err := s.configBucket(ctx)
	if err != nil {
		return err
	}
	for {
		value, rev, err := s.leaderGet(ctx, kv, settingsKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			data, _ := json.Marshal(s.settingsRecord())
			if _, err := kv.Create(ctx, settingsKey, data); !conflict(err) {
				return err
			}
			continue // another node was first: check against its record
		}
		if err != nil {
			return fmt.Errorf("read the cluster's settings: %w", err)
		}
		rec := map[string]string{}
		if err := json.Unmarshal(value, &rec); err != nil {
			return &settingsRecordError{err}
		}
		changed, err := s.compareSettings(ctx, rec)
		if err != nil || !changed {
			return err
		}
		data, _ := json.Marshal(rec)
		if _, err := kv.Update(ctx, settingsKey, data, rev); !conflict(err) {
			return err
		}
	}
}

// compareSettings checks rec, the cluster's record, against this node's
// settings and changes rec where this node's values are to be recorded.
func (s *Store) compareSettings(ctx context.Context, rec map[string]string) (changed bool, err error) {
	if r, ok := rec[SettingReplicas]; ok && s.autoReplicas {
		if n, err := strconv.Atoi(r); err == nil && n > 0 {
			s.cfg.Replicas = n
		}
	}
	change := s.cfg.ChangeSettings || s.ns != nil
	s.replaced = nil // from an attempt that lost a race
	var wrong, replaced []Mismatch
	for _, set := range s.settings() {
		have, ok := rec[set.Name]
		switch {
		case ok && have == set.Value:
			continue
		case !ok:
		case set.Fixed && (set.Replaces == ReplaceAny || set.Replaces == have && have != ""):
			replaced = append(replaced, Mismatch{Setting: set, Cluster: have})
		case set.Fixed || !change:
			wrong = append(wrong, Mismatch{Setting: set, Cluster: have})
			continue
		default:
			s.log.Info("cluster setting changed", "setting", set.Name, "from", have, "to", set.Value)
		}
		rec[set.Name] = set.Value
		changed = true
	}
	if len(wrong) > 0 {
		return false, &SettingsError{Mismatches: wrong}
	}
	if len(replaced) > 0 {
		n, err := s.otherNodes(ctx)
		if err != nil {
			return false, err
		}
		if n > 0 {
			return false, &SettingsError{Mismatches: replaced, NodesAlive: n}
		}
		for _, m := range replaced {
			s.replaced = append(s.replaced, m.Name)
		}
	}
	return changed, nil
}

// settings are the caller's settings and the store's own.
func (s *Store) settings() []Setting {
	age, size := s.attemptLimits()
	return slices.Concat(s.cfg.Settings, []Setting{
		{Name: SettingReplicas, Value: strconv.Itoa(s.cfg.Replicas)},
		{Name: SettingAttemptsMaxAge, Value: age.String()},
		{Name: SettingAttemptsMaxSize, Value: strconv.FormatInt(size, 10)},
	})
}

// settingsRecord is the record of this node's settings.
func (s *Store) settingsRecord() map[string]string {
	rec := map[string]string{}
	for _, set := range s.settings() {
		rec[set.Name] = set.Value
	}
	return rec
}

// withSetting is a settings record with one setting set to value.
func withSetting(record []byte, name, value string) ([]byte, error) {
	rec := map[string]string{}
	if err := json.Unmarshal(record, &rec); err != nil {
		return nil, &settingsRecordError{err}
	}
	rec[name] = value
	return json.Marshal(rec)
}

// Replaced names the replaceable settings this node recorded in place of
// the cluster's when it opened the store.
func (s *Store) Replaced() []string { return s.replaced }

// otherNodes counts the nodes alive besides this one, which has not
// announced itself yet.
func (s *Store) otherNodes(ctx context.Context) (int, error) {
	kv, err := s.js.KeyValue(ctx, nodesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("nodes: %w", err)
	}
	n, err := s.countKeys(ctx, kv)
	if err != nil {
		return 0, fmt.Errorf("nodes: %w", err)
	}
	return n, nil
}

// settingsRecordError is a record of the cluster's settings that does
// not parse: trying again would not change it.
type settingsRecordError struct{ err error }

func (e *settingsRecordError) Error() string {
	return "the cluster's settings record does not parse: " + e.err.Error()
}

// configBucket returns the configuration bucket, creating it if the store
// is new, without changing it if it exists.
func (s *Store) configBucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, configBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, s.configBucketConfig())
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = s.js.KeyValue(ctx, configBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("config bucket: %w", err)
	}
	return kv, nil
}

func (s *Store) configBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      configBucket,
		Description: "bridgeport configuration: buses, rules and targets",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	}
}
