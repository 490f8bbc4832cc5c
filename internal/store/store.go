// Package store keeps everything durable in NATS JetStream: configuration in
// a KV bucket that every node watches, ingested events and delivery jobs in
// streams. It runs nats-server inside the process (no TCP listener, an
// in-process connection) with its file store under a data directory, or
// connects to an external NATS server or cluster; both go through the same
// code. It is the only package that imports NATS.
package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/wait"
)

// Config says where the store lives and how durable its writes are.
type Config struct {
	// DataDir holds the embedded server's file store (DataDir/jetstream).
	DataDir string
	// URL is an external NATS server or cluster; empty runs the embedded
	// server.
	URL string
	// SyncAlways makes the embedded server fsync every write before
	// acknowledging it. Without it, writes reach the operating system before
	// they are acknowledged (they survive kill -9) and are fsynced every
	// SyncInterval.
	SyncAlways bool
	// SyncInterval is the embedded server's fsync interval when SyncAlways is
	// off; 0 means 1 second.
	SyncInterval time.Duration
	// Replicas is the replica count of streams and buckets; 0 means 3 when
	// connected to a NATS cluster and 1 otherwise (the embedded engine, a
	// single server).
	Replicas int
	// AttemptsMaxAge and AttemptsMaxBytes bound the delivery attempt log;
	// 0 means 7 days and 1 GiB.
	AttemptsMaxAge   time.Duration
	AttemptsMaxBytes int64
	// Settings, when not nil, are this node's settings that every node
	// must share: they are checked against the cluster's before anything
	// else is written, and a node whose settings differ is refused with a
	// *SettingsError (settings.go). Nil checks nothing (migrate).
	Settings []Setting
	// ChangeSettings records this node's values of the settings that are
	// not fixed in place of the cluster's.
	ChangeSettings bool
	// Logger receives the store's own messages; nil discards them.
	Logger *slog.Logger
}

// Names of the streams and buckets.
const (
	configBucket = "bridgeport_config"
	eventsStream = "BP_EVENTS"
	jobsStream   = "BP_JOBS"

	eventsSubject = "bp.events"
	jobsSubject   = "bp.jobs"

	// The replay lane: the jobs of replayed events, served apart from the
	// live ones (AppendReplayJobs).
	replayStream  = "BP_REPLAYED"
	replaySubject = "bp.replayed"

	// JobShards is the number of subjects delivery jobs are spread over, by
	// a hash of their target, so that a later delivery engine can give each
	// shard to one worker without a consumer per target.
	JobShards = 64
)

// Store is an open connection to JetStream with bridgeport's streams and
// buckets in place. Safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger
	ns  *server.Server // nil when connected to an external server
	nc  *nats.Conn
	js  jetstream.JetStream
	// closed is closed when the connection is closed for good.
	closed chan struct{}

	kv       jetstream.KeyValue
	events   jetstream.Stream
	jobs     jetstream.Stream
	queues   jetstream.Stream
	receipts jetstream.KeyValue
	nodesKV  jetstream.KeyValue
	ratesKV  jetstream.KeyValue
	healthKV jetstream.KeyValue
	redrives jetstream.KeyValue
	nodes    atomic.Int64 // live nodes, from the heartbeats
	inHand   atomic.Int64 // parked jobs this node holds (KeepParked)
	lock     *os.File     // the embedded engine's data directory lock
	// autoReplicas: the replicas were left to the store to choose.
	autoReplicas bool
	// replaced names the settings this node recorded in place of the
	// cluster's.
	replaced []string
	// strandedSettle replaces the constant of that name when set (tests).
	strandedSettle time.Duration
	// batchAckWait replaces the batch consumer's acknowledgement wait when
	// set (tests).
	batchAckWait time.Duration
	// attempts holds the attempt log's records not yet published.
	attempts attemptBatch
}

// Open starts the embedded server (or connects to cfg.URL) and makes sure
// the streams and buckets exist.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	s := &Store{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	s.closed = make(chan struct{})
	opts := []nats.Option{nats.Name("bridgeport"), nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(s.closed) })}
	if cfg.URL == "" {
		if err := s.startEmbedded(); err != nil {
			s.Close()
			return nil, err
		}
		s.nc, err = nats.Connect("", append(opts, nats.InProcessServer(s.ns))...)
	} else {
		s.nc, err = s.connect(ctx, opts)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	if s.cfg.Replicas <= 0 {
		s.autoReplicas = true
		s.cfg.Replicas = 1
		if s.nc.ConnectedClusterName() != "" {
			s.cfg.Replicas = 3
		}
	}
	// On a cluster, an acknowledgement can be lost when a stream's leader
	// changes (a NATS server lost under load): the write fails after
	// publishAckWait instead of waiting forever. The router's redelivery
	// then writes the jobs again under the same message ids; PutEvents
	// answers InternalFailure for the entry, which the client sends again
	// (as a new event, as with AWS). The embedded engine loses none.
	var jsOpts []jetstream.JetStreamOpt
	if s.ns == nil {
		jsOpts = append(jsOpts, jetstream.WithPublishAsyncTimeout(publishAckWait))
	}
	if s.js, err = jetstream.New(s.nc, jsOpts...); err != nil {
		s.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if cfg.Settings != nil {
		// Before anything else is written: a node that cannot serve the
		// cluster correctly must change nothing.
		if err := s.untilReady(ctx, s.checkSettings); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.untilReady(ctx, s.ensure); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// publishAckWait bounds the wait for JetStream's acknowledgement of a write.
const publishAckWait = 5 * time.Second

// startupRetry is how long a node waits between its attempts to reach an
// external NATS, or to create its streams there, while it starts.
const startupRetry = 2 * time.Second

// minPayload is the smallest max_payload bridgeport works with.
const minPayload = 2 << 20

// connect dials the external NATS, trying again until ctx ends: a node may
// start before the servers it points at, or while they are restarting.
func (s *Store) connect(ctx context.Context, opts []nats.Option) (*nats.Conn, error) {
	for {
		nc, err := nats.Connect(s.cfg.URL, opts...)
		if err == nil {
			// 2.10 brought consumers with several filter subjects, 2.11
			// per-message TTLs (queue retention); an older server would
			// fail later, or ignore the TTLs.
			if v := nc.ConnectedServerVersion(); !serverAtLeast(v, 2, 11) {
				url := RedactURLs(nc.ConnectedUrl())
				nc.Close()
				return nil, fmt.Errorf("nats-server %s at %s is too old: bridgeport needs 2.11 or later; Debian 12's package is 2.9, use an upstream release", v, url)
			}
			// A queue message holds up to 1 MiB of body plus its
			// attributes; a smaller max_payload would refuse some writes
			// after they were accepted.
			if mp := nc.MaxPayload(); mp < minPayload {
				url := RedactURLs(nc.ConnectedUrl())
				nc.Close()
				return nil, fmt.Errorf("nats-server at %s has max_payload %d bytes: bridgeport needs at least %d (2 MiB); set max_payload: 2MB or more in its configuration", url, mp, minPayload)
			}
			return nc, nil
		}
		if refused(err) {
			return nil, err // waiting would not change the answer
		}
		s.log.Warn("cannot reach NATS; trying again", "url", RedactURLs(s.cfg.URL), "error", err, "retry_in", startupRetry.String())
		if !wait.For(ctx, startupRetry) {
			return nil, fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		}
	}
}

// RedactURLs is a comma-separated list of NATS URLs with their passwords
// and tokens masked, for logs and messages.
func RedactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p // nats.go takes host:port alone, as nats://
		}
		u, err := url.Parse(p)
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)"
		case u.User != nil:
			if _, hasPassword := u.User.Password(); !hasPassword {
				u.User = url.User("xxxxx") // a bare token
			}
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// serverAtLeast reports whether a nats-server version ("2.10.4",
// "v2.11.0-RC.1") is at least major.minor.
func serverAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	num := func(s string) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	maj, mnr := num(parts[0]), num(parts[1])
	return maj > major || maj == major && mnr >= minor
}

// ensureAttempt bounds one attempt to create the streams and buckets on an
// external NATS.
const ensureAttempt = 5 * time.Second

// ensureAll creates or updates the streams and buckets. On an external
// NATS it tries again until ctx ends while JetStream cannot answer, each
// attempt with its own deadline: a cluster that is starting has no meta
// leader yet, and a request made then goes unanswered. Several nodes may
// do this at the same moment. Creating the same stream twice is
// idempotent, but on a cluster the second of two concurrent creates can go
// unanswered (nats-server proposes it again and answers only the first);
// the next attempt finds the stream and updates it, which is answered.
func (s *Store) ensureAll(ctx context.Context) error {
	return s.untilReady(ctx, s.ensure)
}

// untilReady runs op once on the embedded engine, and on an external NATS
// until JetStream answers (untilAnswered).
func (s *Store) untilReady(ctx context.Context, op func(context.Context) error) error {
	if s.ns != nil {
		return op(ctx)
	}
	return s.untilAnswered(ctx, op, "JetStream is not ready; trying again")
}

// retryWait is how long to wait before a JetStream request that went
// unanswered is made again: about startupRetry, at random, so that nodes
// that started together fall out of step instead of colliding again.
func retryWait() time.Duration {
	return (startupRetry/2 + rand.N(startupRetry)).Round(time.Millisecond)
}

// durable creates or updates a durable consumer that the nodes share,
// trying again until ctx ends while the request goes unanswered: as with
// streams, the second of two nodes creating it at once may get no answer.
func (s *Store) durable(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	err := s.untilAnswered(ctx, func(actx context.Context) error {
		var err error
		cons, err = s.js.CreateOrUpdateConsumer(actx, stream, cfg)
		return err
	}, "consumer not created; trying again", "consumer", cfg.Durable)
	return cons, err
}

// untilAnswered runs op, each attempt with a deadline of ensureAttempt,
// until it succeeds, fails in a way that trying again would not change,
// or ctx ends; each failure worth another try is logged as msg with
// attrs.
func (s *Store) untilAnswered(ctx context.Context, op func(context.Context) error, msg string, attrs ...any) error {
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		err := op(actx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		pause := retryWait()
		s.log.Warn(msg, append(attrs, "error", err, "retry_in", pause.String())...)
		if !wait.For(ctx, pause) {
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		}
	}
}

// refused reports whether NATS refused a connection for a reason that
// trying again would not change: credentials, TLS, or its verification.
func refused(err error) bool {
	for _, e := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked,
		nats.ErrSecureConnRequired, nats.ErrSecureConnWanted, nats.ErrNkeysNotSupported} {
		if errors.Is(err, e) {
			return true
		}
	}
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host)
}

// JetStream's error codes that decide whether a request is worth making
// again, whatever their HTTP status says.
const (
	codeNoPeers        = 10005 // no suitable peers for placement: fewer servers up than replicas
	codeNotClustered   = 10006 // JetStream not in clustered mode
	codeReplicasNotSup = 10074 // replicas > 1 not supported in non-clustered mode
)

// transient reports whether a JetStream request may succeed if made again:
// no answer, no responders, a connection being re-established, a cluster
// without a leader yet, or with fewer servers up than the replicas asked
// for (a cluster that is starting). A request JetStream refused as bad, a
// single server asked for replicas, or a server without JetStream, is not
// worth repeating.
func transient(err error) bool {
	var settings *SettingsError
	var record *settingsRecordError
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.As(err, &settings) || errors.As(err, &record) {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeNoPeers:
			return true
		case codeNotClustered, codeReplicasNotSup:
			return false
		}
		return apiErr.Code >= 500
	}
	return true
}

func (s *Store) startEmbedded() error {
	dir := filepath.Join(s.cfg.DataDir, "jetstream")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(s.cfg.DataDir)
	if err != nil {
		return err
	}
	s.lock = lock
	opts := &server.Options{
		ServerName:      "bridgeport",
		DontListen:      true,
		JetStream:       true,
		StoreDir:        dir,
		SyncAlways:      s.cfg.SyncAlways,
		SyncInterval:    s.cfg.SyncInterval,
		NoSigs:          true,
		NoLog:           true,
		NoSystemAccount: true,
		// Queue messages reach 1 MiB plus their attributes.
		MaxPayload: minPayload,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return errors.New("embedded nats: not ready after 30s")
	}
	s.ns = ns
	return nil
}

// ensure creates or updates the streams and buckets.
func (s *Store) ensure(ctx context.Context) error {
	var err error
	s.kv, err = s.js.CreateOrUpdateKeyValue(ctx, s.configBucketConfig())
	if err != nil {
		return fmt.Errorf("config bucket: %w", err)
	}
	s.events, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        eventsStream,
		Description: "events accepted by PutEvents, by bus",
		Subjects:    []string{eventsSubject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      7 * 24 * time.Hour,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  dedupeWindow,
	})
	if err != nil {
		return fmt.Errorf("events stream: %w", err)
	}
	s.jobs, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        jobsStream,
		Description: "delivery jobs: one per matched event, rule and target",
		Subjects:    []string{jobsSubject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  dedupeWindow,
	})
	if err != nil {
		return fmt.Errorf("jobs stream: %w", err)
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        batchStream,
		Description: "delivery jobs queued by the router, in batches",
		Subjects:    []string{batchSubject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  dedupeWindow,
	}); err != nil {
		return fmt.Errorf("job batches stream: %w", err)
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        replayStream,
		Description: "delivery jobs of replayed events",
		Subjects:    []string{replaySubject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  dedupeWindow,
	}); err != nil {
		return fmt.Errorf("replay jobs stream: %w", err)
	}
	if err := s.ensureQueues(ctx); err != nil {
		return err
	}
	if err := s.ensureAttempts(ctx); err != nil {
		return err
	}
	if err := s.ensureAside(ctx); err != nil {
		return err
	}
	if err := s.ensurePark(ctx); err != nil {
		return err
	}
	if err := s.ensureHealth(ctx); err != nil {
		return err
	}
	if err := s.ensureNodes(ctx); err != nil {
		return err
	}
	if err := s.ensureRates(ctx); err != nil {
		return err
	}
	if err := s.ensureRedrives(ctx); err != nil {
		return err
	}
	return s.ensureDelay(ctx)
}

// Ready reports whether the connection to NATS is up.
func (s *Store) Ready() bool {
	return s.nc != nil && s.nc.IsConnected()
}

// Close drains the connection and shuts the embedded server down, waiting
// until its files are closed.
func (s *Store) Close() error {
	var err error
	if s.nc != nil {
		s.attempts.flush(s)
		// Drain flushes what was published and closes; it gives up by
		// itself after its timeout (30 s).
		if derr := s.nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
			err = derr
			s.nc.Close()
		}
		<-s.closed
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	if s.lock != nil {
		s.lock.Close()
	}
	return err
}
