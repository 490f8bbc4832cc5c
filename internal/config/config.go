// Package config holds bridgeport's settings: defaults, the command-line
// flags of `bridgeport serve`, and the BRIDGEPORT_* environment variables
// that stand in for each flag.
package config

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is everything `bridgeport serve` can be told.
type Config struct {
	Listen          string
	DataDir         string
	Region          string
	AccountID       string
	AccessKeyID     string
	SecretAccessKey string
	NATSURL         string
	// Replicas of streams and buckets; 0 picks 3 on a NATS cluster and 1
	// otherwise.
	Replicas int
	// SecretKey is the base64 AES-256 key that seals connection secrets;
	// empty keeps a generated key in the data directory.
	SecretKey string
	// PreviousSecretKey, when set, is the key the cluster's secrets were
	// sealed with until now: this node seals them again with SecretKey and
	// records SecretKey as the cluster's key (a rotation).
	PreviousSecretKey string
	// ReplaceSecretKey records SecretKey as the cluster's key whatever key
	// the cluster had (one that was lost).
	ReplaceSecretKey bool
	// ChangeClusterSettings records this node's values of the cluster's
	// settings that may change (quotas, replicas, ...) in place of those
	// the cluster has, instead of refusing to start.
	ChangeClusterSettings bool

	AllowPrivateEndpoints bool
	AllowHTTPEndpoints    bool
	// InvocationConnectionClose sends Connection: close with every
	// invocation of an API destination, as EventBridge does, instead of
	// keeping connections for reuse.
	InvocationConnectionClose bool
	RetryBaseDelay            time.Duration
	RetryMaxDelay             time.Duration
	// MatchTimeout bounds the matching of one event against its bus's
	// rules; an event that needs longer on every try is set aside.
	MatchTimeout time.Duration
	// MemoryLimit, when set, is the Go runtime's soft memory limit for the
	// process (bytes; serve sets it): the collector works harder near it
	// and returns freed memory to the system.
	MemoryLimit Bytes
	// Pprof serves /debug/pprof/.
	Pprof bool
	// AttemptLogMaxAge and AttemptLogMaxBytes bound the delivery attempt
	// log.
	AttemptLogMaxAge   time.Duration
	AttemptLogMaxBytes int64

	// SyncAlways fsyncs every write before acknowledging it.
	SyncAlways bool
	// SyncInterval is how often writes are fsynced otherwise.
	SyncInterval time.Duration
	LogLevel     string

	// Clients bounds what clients of the listener may hold.
	Clients Clients

	Quotas Quotas

	// ExtraCAFile holds certificates API destinations may present besides
	// publicly trusted ones (for local and test endpoints).
	ExtraCAFile string

	// Now, when set, is the clock delivery measures event ages with (tests
	// use it to age events without waiting).
	Now func() time.Time
	// ScheduleNow, when set, is the clock scheduled rules fire by (tests
	// move it so that a due time comes in seconds).
	ScheduleNow func() time.Time
	// KeeperPoll, when set, replaces the second after which delivery looks
	// again for targets with parked jobs and no keeper on this node (tests
	// set it long, so that only a park can start one).
	KeeperPoll time.Duration

	// RootCAs, when set, replaces the system's trusted roots for
	// API destinations (tests use it to trust their own servers).
	RootCAs *x509.CertPool

	// ReplayBacklog bounds the jobs of replayed events waiting to be
	// delivered: a replay waits while more are queued.
	ReplayBacklog int

	// ReplayCPU is the share of the machine's CPU time, in percent, above
	// which the deliveries of replayed events slow down; 100 turns the
	// pacing off.
	ReplayCPU int

	// ScheduleCatchUp is how old a scheduled rule's due time that passed
	// while no node was running may be and still fire, once, late.
	ScheduleCatchUp time.Duration

	// InvokeTimeout, when set, replaces EventBridge's 5-second limit on an
	// invocation (tests lengthen it to hold calls for as long as they
	// need, whatever the machine's speed).
	InvokeTimeout time.Duration
}

// Clients are the listener's limits on its clients, so that clients that
// are not signed, or send slowly, cost almost nothing.
type Clients struct {
	// ReadHeaderTimeout is how long a client may take to send a
	// request's headers; ReadTimeout, the whole request, body included.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration
	// MaxConnections is the most connections open at once; 0 picks half
	// the process's limit of open files, at most 10,000.
	MaxConnections int
	// MaxBodyBytesInFlight is the most bytes of request bodies read or
	// held at once.
	MaxBodyBytesInFlight int64
}

// Quotas are EventBridge's service quotas, with AWS's defaults.
type Quotas struct {
	EventBuses        int // event buses per account, the default bus included
	RulesPerBus       int
	TargetsPerRule    int
	PatternSize       int // characters in an event pattern
	WildcardRules     int // rules with a wildcard pattern per bus
	EventSize         int // bytes of the entries of one PutEvents request
	Connections       int
	ApiDestinations   int
	Archives          int
	ShutdownGraceTime time.Duration
}

// Default returns the defaults.
func Default() Config {
	return Config{
		Listen:             "127.0.0.1:4010",
		DataDir:            "./bridgeport-data",
		Region:             "us-east-1",
		AccountID:          "000000000000",
		RetryBaseDelay:     time.Second,
		RetryMaxDelay:      15 * time.Minute,
		MatchTimeout:       2 * time.Second,
		ReplayBacklog:      5000,
		ReplayCPU:          50,
		ScheduleCatchUp:    time.Hour,
		AttemptLogMaxAge:   7 * 24 * time.Hour,
		AttemptLogMaxBytes: 1 << 30,
		SyncInterval:       time.Second,
		LogLevel:           "info",
		Clients: Clients{
			ReadHeaderTimeout:    10 * time.Second,
			ReadTimeout:          time.Minute,
			IdleTimeout:          2 * time.Minute,
			MaxBodyBytesInFlight: 64 << 20,
		},
		Quotas: Quotas{
			EventBuses:        100,
			RulesPerBus:       300,
			TargetsPerRule:    5,
			PatternSize:       2048,
			WildcardRules:     30,
			EventSize:         1 << 20,
			Connections:       3000,
			ApiDestinations:   3000,
			Archives:          100,
			ShutdownGraceTime: 30 * time.Second,
		},
	}
}

// Parse reads flags from args, falling back to BRIDGEPORT_* variables from
// getenv for flags not given, and validates the result.
func Parse(name string, args []string, getenv func(string) string) (Config, *flag.FlagSet, error) {
	c := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on (host:port)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the embedded store, credentials and keys")
	fs.StringVar(&c.Region, "region", c.Region, "the AWS region bridgeport answers as")
	fs.StringVar(&c.AccountID, "account-id", c.AccountID, "the 12-digit account id in ARNs")
	fs.StringVar(&c.AccessKeyID, "access-key-id", "", "root access key id (generated and kept in the data directory when unset)")
	fs.StringVar(&c.SecretAccessKey, "secret-access-key", "", "root secret access key (generated when unset)")
	fs.StringVar(&c.NATSURL, "nats-url", "", "external NATS server or cluster (empty: the embedded engine)")
	fs.IntVar(&c.Replicas, "replicas", 0, "replicas of every stream and bucket bridgeport creates (default: 3 on a NATS cluster, 1 otherwise)")
	fs.StringVar(&c.SecretKey, "secret-key", "", "base64 AES-256 key sealing connection secrets (set it with BRIDGEPORT_SECRET_KEY; default: a key kept in the data directory)")
	fs.StringVar(&c.PreviousSecretKey, "previous-secret-key", "", "rotate the secret key: the key the cluster used until now; connection secrets are sealed again with --secret-key, which becomes the cluster's key (set it with BRIDGEPORT_PREVIOUS_SECRET_KEY; every other node stopped)")
	fs.BoolVar(&c.ReplaceSecretKey, "replace-secret-key", false, "make --secret-key the cluster's key whatever key it had, after that key was lost (its connections need their credentials again; every other node stopped)")
	fs.BoolVar(&c.ChangeClusterSettings, "change-cluster-settings", false, "record this node's quotas, replicas, endpoint and attempt-log settings as the cluster's, instead of refusing to start when they differ")
	fs.BoolVar(&c.AllowPrivateEndpoints, "allow-private-endpoints", false, "allow API destinations and OAuth token endpoints on private and loopback addresses")
	fs.BoolVar(&c.AllowHTTPEndpoints, "allow-http-endpoints", false, "allow API destinations and OAuth token endpoints over plain http (credentials in the clear)")
	fs.BoolVar(&c.InvocationConnectionClose, "invocation-connection-close", false, "send Connection: close with every invocation of an API destination and open a new connection (and TLS session) for each, as EventBridge does (default: connections are kept and reused)")
	fs.StringVar(&c.ExtraCAFile, "extra-ca-file", "", "PEM file of certificates to trust for API destinations, besides the system's")
	fs.DurationVar(&c.RetryBaseDelay, "retry-base-delay", c.RetryBaseDelay, "first step of the retry backoff")
	fs.DurationVar(&c.RetryMaxDelay, "retry-max-delay", c.RetryMaxDelay, "ceiling of the retry backoff")
	fs.Var(&c.MemoryLimit, "memory-limit", "soft limit of the process's memory, e.g. 256MiB (the Go runtime's GOMEMLIMIT; default: none)")
	fs.IntVar(&c.ReplayBacklog, "replay-backlog", c.ReplayBacklog, "most deliveries of replayed events queued at once; a replay waits while more are")
	fs.IntVar(&c.ReplayCPU, "replay-cpu", c.ReplayCPU, "percent of the machine's CPU time (all cores) above which replayed events are delivered more slowly, leaving the rest to live traffic (Linux; 100: no pacing)")
	fs.DurationVar(&c.ScheduleCatchUp, "schedule-catch-up", c.ScheduleCatchUp, "after a time with no node running, each scheduled rule fires its latest missed due time once if it is no older than this (0: missed due times are skipped)")
	fs.DurationVar(&c.MatchTimeout, "match-timeout", c.MatchTimeout, "longest the router matches one event against its bus's rules; an event that needs longer 3 times is set aside")
	fs.DurationVar(&c.AttemptLogMaxAge, "attempt-log-max-age", c.AttemptLogMaxAge, "how long the delivery attempt log keeps a record")
	fs.Int64Var(&c.AttemptLogMaxBytes, "attempt-log-max-bytes", c.AttemptLogMaxBytes, "the most the delivery attempt log holds, in bytes (the oldest records go first)")
	fs.BoolVar(&c.SyncAlways, "sync-always", false, "fsync every write before acknowledging it (survives power loss; slower)")
	fs.DurationVar(&c.SyncInterval, "sync-interval", c.SyncInterval, "how often writes are fsynced when --sync-always is off")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&c.Clients.ReadHeaderTimeout, "read-header-timeout", c.Clients.ReadHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&c.Clients.ReadTimeout, "read-timeout", c.Clients.ReadTimeout, "how long a client may take to send a whole request, headers and body")
	fs.DurationVar(&c.Clients.IdleTimeout, "idle-timeout", c.Clients.IdleTimeout, "how long a keep-alive connection may wait for its next request")
	fs.IntVar(&c.Clients.MaxConnections, "max-client-connections", 0, "the most client connections open at once; at the cap, the one that has waited longest without a request in hand is closed (default: half the open-file limit, at most 10000)")
	fs.Int64Var(&c.Clients.MaxBodyBytesInFlight, "max-body-bytes-in-flight", c.Clients.MaxBodyBytesInFlight, "the most bytes of request bodies read or held at once; a request that waits a second for room is answered 503")
	fs.IntVar(&c.Quotas.EventBuses, "max-event-buses", c.Quotas.EventBuses, "quota: event buses, the default bus included")
	fs.IntVar(&c.Quotas.RulesPerBus, "max-rules-per-bus", c.Quotas.RulesPerBus, "quota: rules per event bus")
	fs.IntVar(&c.Quotas.TargetsPerRule, "max-targets-per-rule", c.Quotas.TargetsPerRule, "quota: targets per rule")
	fs.IntVar(&c.Quotas.PatternSize, "max-pattern-size", c.Quotas.PatternSize, "quota: characters in an event pattern (at most 4096)")
	fs.IntVar(&c.Quotas.WildcardRules, "max-wildcard-rules", c.Quotas.WildcardRules, "quota: rules with wildcard patterns per bus")
	fs.IntVar(&c.Quotas.Connections, "max-connections", c.Quotas.Connections, "quota: connections")
	fs.IntVar(&c.Quotas.ApiDestinations, "max-api-destinations", c.Quotas.ApiDestinations, "quota: API destinations")
	fs.IntVar(&c.Quotas.Archives, "max-archives", c.Quotas.Archives, "quota: archives (EventBridge documents none)")
	fs.IntVar(&c.Quotas.EventSize, "max-event-size", c.Quotas.EventSize, "quota: bytes of all the entries of one PutEvents request together, counted as AWS counts them")
	fs.DurationVar(&c.Quotas.ShutdownGraceTime, "shutdown-grace", c.Quotas.ShutdownGraceTime, "how long shutdown waits for requests in flight")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go's profiles at /debug/pprof/ on the listener (for measuring; off in production)")
	if err := fs.Parse(args); err != nil {
		return c, fs, err
	}
	if fs.NArg() > 0 {
		return c, fs, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, fs, err
	}
	return c, fs, c.Validate()
}

// EnvName is the environment variable that stands in for a flag:
// BRIDGEPORT_ and the flag in upper snake case.
func EnvName(flagName string) string {
	return "BRIDGEPORT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

var (
	accountRE = regexp.MustCompile(`^\d{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
)

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %w", c.Listen, err))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("--replicas %d: JetStream allows 1 to 5", c.Replicas))
	}
	if c.Replicas > 1 && c.NATSURL == "" {
		errs = append(errs, errors.New("--replicas above 1 needs a NATS cluster (--nats-url)"))
	}
	if c.DataDir == "" && c.NATSURL == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	if !regionRE.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("--region %q is not a region name such as us-east-1", c.Region))
	}
	if !accountRE.MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("--account-id %q is not 12 digits", c.AccountID))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("--access-key-id and --secret-access-key go together"))
	}
	if c.PreviousSecretKey != "" && c.ReplaceSecretKey {
		errs = append(errs, errors.New("--previous-secret-key and --replace-secret-key: give one (the previous key when you have it)"))
	}
	if c.AttemptLogMaxAge <= 0 || c.AttemptLogMaxBytes <= 0 {
		errs = append(errs, errors.New("--attempt-log-max-age and --attempt-log-max-bytes must be positive"))
	}
	if c.MatchTimeout <= 0 || c.MatchTimeout > 4*time.Second {
		// The router's acknowledgement wait is 5 s: a longer match would
		// have the event routed twice at once.
		errs = append(errs, errors.New("--match-timeout must be positive and at most 4s"))
	}
	if c.ScheduleCatchUp < 0 {
		errs = append(errs, errors.New("--schedule-catch-up must not be negative"))
	}
	if c.ReplayBacklog < 1 {
		errs = append(errs, errors.New("--replay-backlog must be positive"))
	}
	if c.ReplayCPU < 20 || c.ReplayCPU > 100 {
		errs = append(errs, errors.New("--replay-cpu must be from 20 to 100"))
	}
	if c.RetryBaseDelay <= 0 || c.RetryMaxDelay < c.RetryBaseDelay {
		errs = append(errs, errors.New("--retry-base-delay must be positive and at most --retry-max-delay"))
	}
	if cl := c.Clients; cl.ReadHeaderTimeout <= 0 || cl.ReadTimeout < cl.ReadHeaderTimeout || cl.IdleTimeout <= 0 {
		errs = append(errs, errors.New("--read-header-timeout and --idle-timeout must be positive, and --read-timeout at least --read-header-timeout"))
	}
	if c.Clients.MaxConnections < 0 || c.Clients.MaxBodyBytesInFlight <= 0 {
		errs = append(errs, errors.New("--max-client-connections must be 0 (automatic) or more, --max-body-bytes-in-flight positive"))
	}
	q := c.Quotas
	if q.EventBuses < 1 || q.RulesPerBus < 1 || q.TargetsPerRule < 1 || q.WildcardRules < 0 || q.Connections < 1 || q.ApiDestinations < 1 || q.Archives < 1 {
		errs = append(errs, errors.New("quotas must be positive"))
	}
	if q.PatternSize < 1 || q.PatternSize > 4096 {
		errs = append(errs, errors.New("--max-pattern-size must be between 1 and 4096, the API's limit"))
	}
	if q.EventSize < 1024 {
		errs = append(errs, errors.New("--max-event-size must be at least 1024"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// Bytes is a size in bytes, written as a number with an optional unit: B,
// KiB, MiB, GiB (or KB, MB, GB, as powers of ten).
type Bytes int64

var byteUnits = []struct {
	suffix string
	size   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

func (b *Bytes) String() string {
	if b == nil || *b == 0 {
		return "0"
	}
	return strconv.FormatInt(int64(*b), 10)
}

// Set parses a size such as 268435456, 256MiB or 1GB.
func (b *Bytes) Set(s string) error {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.size
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size such as 268435456, 256MiB or 1GB", s)
	}
	*b = Bytes(n * mult)
	return nil
}
