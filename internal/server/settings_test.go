package server

import (
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/config"
	"bridgeport/internal/natstest"
	"bridgeport/internal/secretbox"
)

// streamStates describes every stream of the NATS server at url but the
// nodes' heartbeats: its configuration and last sequence, which any write
// changes.
func streamStates(t *testing.T, url string) map[string]string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	out := map[string]string{}
	for name := range js.StreamNames(ctx).Name() {
		if name == "KV_bridgeport_nodes" {
			continue
		}
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := info.Config
		out[name] = fmt.Sprintf("replicas %d, max age %v, max bytes %d, last sequence %d", c.Replicas, c.MaxAge, c.MaxBytes, info.State.LastSeq)
	}
	return out
}

// refused starts a node that must not start, and returns its error.
func refused(t *testing.T, cfg config.Config) string {
	t.Helper()
	srv, err := Start(ctx, cfg, nil)
	if err == nil {
		_ = srv.Stop(ctx)
		t.Fatal("a node whose settings differ from the cluster's started")
	}
	return err.Error()
}

// TestClusterSettings: a node whose secret key, region, account, replicas,
// quotas, endpoint permissions or attempt log differ from the cluster's
// does not start, says which flag to fix and how, never shows a key, and
// changes nothing in the shared state. A node with the cluster's settings
// joins; a quota changes for the cluster with --change-cluster-settings,
// after which a node with the old quota is refused.
func TestClusterSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	urls, sink := natstest.Cluster(t, 3), newSink(t)
	a := clusterNode(t, urls[0], sink)
	a.route(sink, "/hook", 100) // a connection sealed with the cluster's key
	clusterKey := a.cfg.SecretKey
	otherKey := base64.StdEncoding.EncodeToString([]byte("another key, 32 bytes long......"))
	before := streamStates(t, urls[2])
	for _, c := range []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"another secret key", func(c *config.Config) { c.SecretKey = otherKey },
			"--secret-key (BRIDGEPORT_SECRET_KEY): not the key the stored connection secrets are sealed with"},
		{"a generated secret key", func(c *config.Config) { c.SecretKey = "" }, "this node uses a key generated in"},
		{"another region", func(c *config.Config) { c.Region = "eu-west-1" },
			"--region (BRIDGEPORT_REGION): eu-west-1 here, us-east-1 recorded: every node must use the recorded value"},
		{"another account", func(c *config.Config) { c.AccountID = "111111111111" }, "--account-id (BRIDGEPORT_ACCOUNT_ID): 111111111111 here"},
		{"fewer replicas", func(c *config.Config) { c.Replicas = 1 }, "--replicas (BRIDGEPORT_REPLICAS): 1 here, 3 recorded"},
		{"another quota", func(c *config.Config) { c.Quotas.RulesPerBus = 500 },
			"--max-rules-per-bus (BRIDGEPORT_MAX_RULES_PER_BUS): 500 here, 300 recorded: use the recorded value, or"},
		{"private endpoints refused", func(c *config.Config) { c.AllowPrivateEndpoints = false },
			"--allow-private-endpoints (BRIDGEPORT_ALLOW_PRIVATE_ENDPOINTS): false here, true recorded"},
		{"another attempt log", func(c *config.Config) { c.AttemptLogMaxAge = time.Hour }, "--attempt-log-max-age (BRIDGEPORT_ATTEMPT_LOG_MAX_AGE)"},
		{"a key rotation while a node runs", func(c *config.Config) { c.SecretKey, c.PreviousSecretKey = otherKey, c.SecretKey },
			"--secret-key (BRIDGEPORT_SECRET_KEY): not replaced while other nodes are running (1 found): stop them first"},
	} {
		e := newClusterNode(t, urls[1], sink)
		c.change(&e.cfg)
		msg := refused(t, e.cfg)
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, "so it does not start") {
			t.Errorf("%s: the error does not say %q:\n%s", c.name, c.want, msg)
		}
		if strings.Contains(msg, clusterKey) || strings.Contains(msg, otherKey) {
			t.Errorf("%s: the error shows a key:\n%s", c.name, msg)
		}
	}
	if after := streamStates(t, urls[2]); !maps.Equal(before, after) {
		t.Errorf("refused nodes changed the shared state:\nbefore %v\nafter  %v", before, after)
	}

	b := newClusterNode(t, urls[1], sink)
	b.cfg.Quotas.RulesPerBus, b.cfg.ChangeClusterSettings = 500, true
	b.start()
	c := newClusterNode(t, urls[2], sink)
	if msg := refused(t, c.cfg); !strings.Contains(msg, "--max-rules-per-bus (BRIDGEPORT_MAX_RULES_PER_BUS): 300 here, 500 recorded") {
		t.Errorf("a node with the quota the cluster had before: %s", msg)
	}
	c.cfg.Quotas.RulesPerBus = 500
	c.start()
}

// TestStoreSettings: the embedded engine records its settings too. A
// restart with another secret key, region or account is refused; one with
// other quotas is not (the node is the whole cluster), and records them.
func TestStoreSettings(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.stop()
	saved := e.cfg
	otherKey := base64.StdEncoding.EncodeToString([]byte("another key, 32 bytes long......"))
	for _, c := range []struct {
		change func(*config.Config)
		want   string
	}{
		{func(c *config.Config) { c.SecretKey = otherKey }, "--secret-key (BRIDGEPORT_SECRET_KEY): not the key the stored connection secrets are sealed with"},
		{func(c *config.Config) { c.Region = "eu-west-1" }, "--region (BRIDGEPORT_REGION): eu-west-1 here, us-east-1 recorded"},
		{func(c *config.Config) { c.AccountID = "111111111111" }, "--account-id (BRIDGEPORT_ACCOUNT_ID)"},
	} {
		cfg := saved
		c.change(&cfg)
		msg := refused(t, cfg)
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, "differ from those the store in "+e.dir+" was created with") || strings.Contains(msg, otherKey) {
			t.Errorf("restart refused with:\n%s\nwant %q, without the key", msg, c.want)
		}
	}
	e.cfg.Quotas.RulesPerBus = 2
	e.start()
	e.stop()
	e.cfg = saved
	e.start()
}

// TestSecretKeyRotation: the secret key changes only on purpose. With the
// previous key, a node seals the connection secrets again with the new one
// and records it, after which the old key is refused; after a key is lost,
// --replace-secret-key records a new one and the connection takes its
// credentials again.
func TestSecretKeyRotation(t *testing.T) {
	t.Parallel()
	target := newSink(t)
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.AllowPrivateEndpoints, e.cfg.RootCAs = true, target.roots()
	e.start()
	e.route(target, "/hook", 100)
	sent := 0
	deliver := func(userPassword string) {
		t.Helper()
		if _, err := e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("t"),
			DetailType: aws.String("x"), Detail: aws.String(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
		sent++
		got := target.wait(t, sent)
		if auth, want := got[sent-1].header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte(userPassword)); auth != want {
			t.Fatalf("delivery %d: Authorization %q, want %q", sent, auth, want)
		}
	}
	deliver("u:p")
	// An IAM user's access key is sealed with the same key.
	user := e.newCaller("producer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:PutEvents","Resource":"*"}]}`)
	userKey, _ := user.eb.Options().Credentials.Retrieve(ctx)
	e.stop()
	generated, err := os.ReadFile(filepath.Join(e.dir, secretbox.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	oldKey := strings.TrimSpace(string(generated))
	newKey := base64.StdEncoding.EncodeToString([]byte("the new key, 32 bytes long......"))
	e.cfg.SecretKey, e.cfg.PreviousSecretKey = newKey, oldKey
	e.start()
	deliver("u:p")
	userEB := eventbridge.New(eventbridge.Options{BaseEndpoint: aws.String("http://" + e.srv.Addr()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(userKey.AccessKeyID, userKey.SecretAccessKey, ""), RetryMaxAttempts: 1})
	if _, err := userEB.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("u"),
		DetailType: aws.String("x"), Detail: aws.String(`{}`)}}}); err != nil {
		t.Fatalf("the user's access key after the rotation: %v", err)
	}
	e.stop()
	old := e.cfg
	old.SecretKey, old.PreviousSecretKey = oldKey, ""
	if msg := refused(t, old); !strings.Contains(msg, "--secret-key (BRIDGEPORT_SECRET_KEY): not the key") || strings.Contains(msg, oldKey) {
		t.Errorf("the old key after the rotation: %s", msg)
	}
	// Started again with the previous key still set: nothing left to do.
	e.start()
	deliver("u:p")
	e.stop()

	e.cfg.SecretKey = base64.StdEncoding.EncodeToString([]byte("a key for a lost one, 32 bytes.."))
	e.cfg.PreviousSecretKey, e.cfg.ReplaceSecretKey = "", true
	e.start()
	if _, err := e.eb.UpdateConnection(ctx, &eventbridge.UpdateConnectionInput{Name: aws.String("c"), AuthParameters: &types.UpdateConnectionAuthRequestParameters{
		BasicAuthParameters: &types.UpdateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p2")}}}); err != nil {
		t.Fatal(err)
	}
	deliver("u:p2")
}
