package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/bench"
	"bridgeport/internal/config"
	"bridgeport/internal/store"
)

// listenRE finds the address in serve's first line.
var listenRE = regexp.MustCompile(`listening on (http://[0-9.:]+)`)

// serverCommand builds the command that starts a server for bench; tests
// replace it with their own binary.
var serverCommand = func(args []string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, append([]string{"serve"}, args...)...), nil
}

// benchCmd runs the load tool: by default it starts a server (this binary,
// `serve`, on a fresh data directory, as a separate process so its memory
// can be read), or it uses --endpoint.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("bridgeport bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "", "a running server to measure, or the nodes of a cluster, comma-separated, that PutEvents calls go to in turn (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); empty: start one")
	natsURL := fs.String("nats-url", "", "for the started server: an external NATS instead of the embedded engine")
	syncAlways := fs.Bool("sync-always", false, "for the started server: fsync every write")
	dataDir := fs.String("data-dir", "", "for the started server: its data directory (default: a new temporary one)")
	var memLimit config.Bytes
	fs.Var(&memLimit, "memory-limit", "for the started server: its --memory-limit, e.g. 256MiB (default: none)")
	duration := fs.Duration("duration", 10*time.Second, "how long each measurement runs")
	batch := fs.Int("batch", 10, "entries per PutEvents call (1 to 10)")
	eventSize := fs.Int("event-size", 1024, "bytes of each event's detail")
	concurrency := fs.Int("concurrency", 8, "PutEvents callers of the closed-loop measurements")
	rate := fs.Int("rate", 5000, "offered events per second of the latency measurement (the backlog scenario offers at most 1000)")
	targets := fs.Int("targets", 5, "targets of the delivery rule (1 to 5)")
	backlog := fs.Int("backlog", 10000, "events left waiting on dead destinations in the backlog scenario")
	warmup := fs.Duration("warmup", 2*time.Second, "the latency scenario first offers its rate this long, measured apart (a new destination's first calls), then measures for --duration")
	rateLimit := fs.Int("rate-limit", 0, "InvocationRateLimitPerSecond of the destinations bench creates (default: 1,000,000)")
	archive := fs.Int("archive", 100000, "events archived and replayed in the replay scenario")
	rules := fs.Int("rules", 10000, "rules the rules and restart scenarios store on their bus (the started server allows them)")
	connections := fs.Int("connections", 3000, "connections the restart scenario stores (the started server allows them)")
	events := fs.Int("events", 1000000, "events the restart scenario stores")
	deadDests := fs.Int("dead-destinations", 2, "dead destinations the backlog is spread over (half refuse connections, half never answer)")
	output := fs.String("output", "text", "text or json")
	cpuProfile := fs.String("cpu-profile", "", "write the load tool's own CPU profile to this file (the server's: serve --pprof)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bridgeport bench [flags] [ingest] [latency] [delivery] [backlog] [replay] [iam] [rules] [restart]   (default: ingest latency delivery)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	scenarios := fs.Args()
	if len(scenarios) == 0 {
		scenarios = []string{"ingest", "latency", "delivery"}
	}
	for _, s := range scenarios {
		switch s {
		case "ingest", "latency", "delivery", "backlog", "replay", "iam", "rules", "restart":
		default:
			fmt.Fprintf(stderr, "bridgeport bench: unknown scenario %q\n", s)
			return 2
		}
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintln(stderr, "bridgeport bench: --output is text or json")
		return 2
	}
	cfg := bench.Config{Duration: *duration, Warmup: *warmup, Batch: *batch, EventSize: *eventSize, Concurrency: *concurrency, Rate: *rate,
		Targets: *targets, Backlog: *backlog, Archive: *archive, Rules: *rules, Connections: *connections, Events: *events, DeadDestinations: *deadDests, RateLimit: *rateLimit, Progress: stderr, ProgressInPlace: isTerminal(stderr), AccountID: "000000000000", Region: "us-east-1"}
	mode := "external server (" + *endpoint + ")"
	if *endpoint == "" {
		srv, err := startBenchServer(*natsURL, *syncAlways, *dataDir, memLimit, *rules, *connections)
		if err != nil {
			fmt.Fprintln(stderr, "bridgeport bench:", err)
			return 1
		}
		defer srv.stop()
		cfg.Client, cfg.ServerPID = srv.client, srv.cmd.Process.Pid
		cfg.Restart = func(ctx context.Context) (*awsapi.Client, time.Time, error) {
			started, err := srv.restart()
			cfg.ServerPID = srv.cmd.Process.Pid
			return srv.client, started, err
		}
		if *natsURL == "" {
			// The raw engine of the ingest scenario: the store the server
			// embeds, with its settings, in a directory of its own.
			rawDir, err := os.MkdirTemp("", "bridgeport-bench-raw-")
			if err != nil {
				fmt.Fprintln(stderr, "bridgeport bench:", err)
				return 1
			}
			defer os.RemoveAll(rawDir)
			cfg.RawEngine = &store.Config{DataDir: rawDir, SyncAlways: *syncAlways}
		}
		mode = "embedded NATS JetStream, writes acknowledged once handed to the OS, fsync every 1s"
		if *syncAlways {
			mode = "embedded NATS JetStream, fsync before every acknowledgement (--sync-always)"
		}
		if *natsURL != "" {
			mode = "external NATS at " + store.RedactURLs(*natsURL)
		}
		if memLimit > 0 {
			mode += ", --memory-limit " + memLimit.String()
		}
	} else {
		hc := newBenchHTTP()
		for _, ep := range strings.Split(*endpoint, ",") {
			cl, err := (&clientFlags{endpoint: strings.TrimSpace(ep)}).client(getenv)
			if err != nil {
				fmt.Fprintln(stderr, "bridgeport bench:", err)
				return 2
			}
			cl.HTTP = hc
			cfg.Spread = append(cfg.Spread, cl)
		}
		cfg.Client = cfg.Spread[0]
		if len(cfg.Spread) > 1 {
			mode = fmt.Sprintf("%d nodes (%s)", len(cfg.Spread), *endpoint)
		}
		if r := getenv("AWS_REGION"); r != "" {
			cfg.Region = r
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "bridgeport bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bridgeport bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	r, err := bench.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport bench:", err)
		return 2
	}
	defer r.Close()
	report := struct {
		Date       string         `json:"date"`
		Durability string         `json:"durability"`
		Settings   map[string]any `json:"settings"`
		Results    []bench.Result `json:"results"`
	}{Date: time.Now().UTC().Format(time.RFC3339), Durability: mode, Settings: map[string]any{"duration": duration.String(), "batch": *batch,
		"eventSize": *eventSize, "concurrency": *concurrency, "rate": *rate, "targets": *targets, "backlog": *backlog, "deadDestinations": *deadDests, "rateLimit": *rateLimit, "archive": *archive, "rules": *rules, "connections": *connections, "events": *events}}
	for _, s := range scenarios {
		var res bench.Result
		switch s {
		case "ingest":
			res, err = r.Ingest(ctx)
		case "latency":
			res, err = r.Latency(ctx)
		case "delivery":
			res, err = r.Delivery(ctx)
		case "backlog":
			res, err = r.Backlog(ctx)
		case "replay":
			res, err = r.Replay(ctx)
		case "iam":
			res, err = r.IngestIAM(ctx)
		case "rules":
			res, err = r.Rules(ctx)
		case "restart":
			res, err = r.Restart(ctx)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bridgeport bench: %s: %v\n", s, err)
			return 1
		}
		report.Results = append(report.Results, res)
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(report)
		return 0
	}
	fmt.Fprintf(stdout, "bridgeport bench, %s\nstore: %s\n", report.Date, mode)
	for _, res := range report.Results {
		switch res.Scenario {
		case "ingest":
			fmt.Fprintf(stdout, "ingest:   %.0f events/s accepted durably (%d in %.1fs; batches of %d, %d-byte details, %d callers); call p50 %.2f ms, p99 %.2f ms; %d failed\n",
				res.EntriesPerSec, res.Entries, res.Seconds, *batch, *eventSize, *concurrency, res.CallP50Ms, res.CallP99Ms, res.Failed)
			if res.ToolCPUMicros > 0 {
				server := "the server's is not known (started apart)"
				if res.ServerCPUMicros > 0 {
					server = fmt.Sprintf("the server %.1f", res.ServerCPUMicros)
				}
				fmt.Fprintf(stdout, "          CPU per event accepted: %s µs, this load tool %.1f µs (they share the machine's cores)\n", server, res.ToolCPUMicros)
			}
			if res.HTTPCeilingPerSec > 0 {
				fmt.Fprintf(stdout, "          plain HTTP in the same run (%d keep-alive net/http clients posting the same events to the sink, no server between): %.0f requests/s, the ceiling of delivery on this machine\n",
					16**targets, res.HTTPCeilingPerSec)
			}
			if res.RawEntriesPerSec > 0 {
				fmt.Fprintf(stdout, "          the raw engine in the same run (the same envelopes published one message each by %d callers in-process, half the duration before and half after): %.0f events/s; bridgeport x%.3f of it\n",
					*concurrency, res.RawEntriesPerSec, res.RawRatio)
				fmt.Fprintf(stdout, "          (the engine storing each call's events as one message, as bridgeport does: %.0f events/s)\n", res.RawBatchedPerSec)
			}
		case "latency":
			fmt.Fprintf(stdout, "latency:  ingestion to invocation at %d events/s offered: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (%d events, %d missing)\n",
				res.OfferedRate, res.Latency.P50, res.Latency.P90, res.Latency.P99, res.Latency.Max, res.Latency.Count, res.Missing)
			if res.SendLag != nil {
				fmt.Fprintf(stdout, "          timed from each call's start; the load tool's timer started them p50 %.2f ms, p99 %.2f ms after their due times (Go's timers wake up to 1 ms late on Linux)\n",
					res.SendLag.P50, res.SendLag.P99)
			}
			if w := res.WarmupLatency; w != nil {
				fmt.Fprintf(stdout, "          after a warm-up of %s at the same rate, a new destination's first calls, measured apart: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d events)\n",
					*warmup, w.P50, w.P99, w.Max, w.Count)
			}
		case "delivery":
			fmt.Fprintf(stdout, "delivery: %.0f deliveries/s from the first PutEvents call to the last delivery (%d deliveries of %d events to %d targets in %.1fs, %d missing); ",
				res.DeliveriesPerSec, res.Deliveries, res.Entries, *targets, res.Seconds, res.Missing)
			if res.DrainSeconds >= 1 {
				fmt.Fprintf(stdout, "%d left when ingest stopped, drained at %.0f/s in %.1fs\n", res.DrainedDeliveries, res.DrainedPerSec, res.DrainSeconds)
			} else {
				fmt.Fprintf(stdout, "the server kept up with ingest (%d left when it stopped), so this is ingest's rate, not delivery's limit\n", res.DrainedDeliveries)
			}
			if res.HTTPCeilingPerSec > 0 {
				fmt.Fprintf(stdout, "          plain HTTP in the same run (%d keep-alive net/http clients posting the same events to the sink, no server between): %.0f requests/s, the ceiling of delivery on this machine\n",
					16**targets, res.HTTPCeilingPerSec)
			}
			if res.RawEntriesPerSec > 0 {
				fmt.Fprintf(stdout, "          the raw engine in the same run (as many jobs of the same events queued, then taken and acknowledged by a plain pull consumer): %.0f jobs/s; bridgeport x%.3f of it\n",
					res.RawEntriesPerSec, res.RawRatio)
			}
		case "backlog":
			mem := "server memory not read (not a server bench started)"
			if res.ServerRSSBytes > 0 {
				mem = fmt.Sprintf("server RSS %.0f MB (peak %.0f MB)", float64(res.ServerRSSBytes)/(1<<20), float64(res.ServerPeakBytes)/(1<<20))
			}
			fmt.Fprintf(stdout, "backlog:  %d events waiting on %d dead destinations; healthy target at %d events/s over %.0f s from when the backlog was in: p99 %.2f ms, max %.1f ms, against p99 %.2f ms without the backlog (x%.2f); %s\n",
				res.BacklogEvents, res.DeadDestinations, res.OfferedRate, res.Seconds, res.Latency.P99, res.Latency.Max, res.BaselineLatency.P99, res.P99RatioToBaseline, mem)
		}
		if res.Scenario == "iam" {
			fmt.Fprintf(stdout, "iam:      %.0f events/s accepted durably signed by an IAM user's key (each entry authorized), %.0f signed by the root key, in alternating quarters of %s: x%.3f\n",
				res.EntriesPerSec, res.RootEntriesPerSec, duration.String(), res.UserToRootRatio)
		}
		if res.Scenario == "rules" {
			fmt.Fprintf(stdout, "rules:    %d rules loaded one PutRule at a time in %.1f s (calls p50 %.2f ms, p99 %.2f ms; the last tenth p50 %.2f ms, p99 %.2f ms); on the full bus:\n",
				res.Rules, res.LoadSeconds, res.LoadCalls.P50, res.LoadCalls.P99, res.LoadLast.P50, res.LoadLast.P99)
			for _, k := range slices.Sorted(maps.Keys(res.Changes)) {
				d := res.Changes[k]
				fmt.Fprintf(stdout, "          %-17s p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d calls)\n", k, d.P50, d.P99, d.Max, d.Count)
			}
			fmt.Fprintf(stdout, "          events at %d/s to a rule of the same bus while rules changed: p99 %.2f ms, max %.1f ms, against p99 %.2f ms before (x%.2f)\n",
				res.OfferedRate, res.Latency.P99, res.Latency.Max, res.BaselineLatency.P99, res.P99RatioToBaseline)
		}
		if res.Scenario == "restart" {
			fmt.Fprintf(stdout, "restart:  %d rules, %d connections and %d events stored in %.1f s; killed (SIGKILL) and started again: its first answer (DescribeRule) %.2f s after the process started\n",
				res.Rules, res.Connections, res.Events, res.FillSeconds, res.RestartSeconds)
		}
		if res.Scenario == "replay" {
			mem := ""
			if res.ServerRSSBytes > 0 {
				mem = fmt.Sprintf("; server RSS %.0f MB (peak %.0f MB)", float64(res.ServerRSSBytes)/(1<<20), float64(res.ServerPeakBytes)/(1<<20))
			}
			if res.ReplayPeakRSSBytes > 0 {
				mem = fmt.Sprintf("; server RSS %.0f MB when the replay started, peak %.0f MB from then until its deliveries were in, %.0f MB at the end",
					float64(res.ReplayStartRSSBytes)/(1<<20), float64(res.ReplayPeakRSSBytes)/(1<<20), float64(res.ServerRSSBytes)/(1<<20))
			}
			fmt.Fprintf(stdout, "replay:   %d archived events replayed in %.1f s (%.0f events/s through the rules); all %d replayed deliveries arrived %.1f s after the start; live target at %d events/s over %.0f s from the start: p99 %.2f ms, max %.1f ms, against p99 %.2f ms before (x%.2f)%s\n",
				res.ArchivedEvents, res.ReplaySeconds, res.ReplayedPerSec, res.ReplayDeliveries, res.ReplayDrainSecs, res.OfferedRate, res.Seconds,
				res.Latency.P99, res.Latency.Max, res.BaselineLatency.P99, res.P99RatioToBaseline, mem)
		}
		for _, c := range res.Checks {
			verdict := "PASS"
			if !c.Pass {
				verdict = "FAIL"
			}
			fmt.Fprintf(stdout, "  %s  %s: %s\n", verdict, c.Name, c.Detail)
		}
	}
	return 0
}

// benchServer is a server process bench started.
type benchServer struct {
	cmd    *exec.Cmd
	args   []string // to start it again
	key    string
	secret string
	dir    string
	temp   bool
	client *awsapi.Client
}

func startBenchServer(natsURL string, syncAlways bool, dataDir string, memLimit config.Bytes, rules, connections int) (*benchServer, error) {
	s := &benchServer{dir: dataDir}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "bridgeport-bench-")
		if err != nil {
			return nil, err
		}
		s.dir, s.temp = d, true
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	key, secret := "AKIABENCH"+strings.ToUpper(hex.EncodeToString(b[:4])), hex.EncodeToString(b[:])
	// The secret goes through the environment: a command line is there
	// for every user of the machine to read.
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", s.dir, "--access-key-id", key,
		"--allow-private-endpoints", "--allow-http-endpoints", "--log-level", "error", "--max-rules-per-bus", strconv.Itoa(max(300, rules+1)),
		"--max-connections", strconv.Itoa(max(50, connections+10))}
	if natsURL != "" {
		args = append(args, "--nats-url", natsURL)
	}
	if syncAlways {
		args = append(args, "--sync-always")
	}
	if memLimit > 0 {
		args = append(args, "--memory-limit", strconv.FormatInt(int64(memLimit), 10))
	}
	s.args, s.key, s.secret = args, key, secret
	if _, err := s.start(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// start starts the server process and waits until it listens; it returns
// when the process started.
func (s *benchServer) start() (time.Time, error) {
	cmd, err := serverCommand(s.args)
	if err != nil {
		return time.Time{}, err
	}
	cmd.Env = append(cmd.Environ(), "BRIDGEPORT_SECRET_ACCESS_KEY="+s.secret)
	s.cmd = cmd
	started := time.Now()
	addr, err := startServing(cmd)
	if err != nil {
		return started, err
	}
	s.client = &awsapi.Client{Endpoint: addr, Region: "us-east-1", AccessKeyID: s.key, SecretAccessKey: s.secret, HTTP: newBenchHTTP()}
	return started, nil
}

// newBenchHTTP returns the load tool's HTTP client. Unlike net/http's
// default transport it keeps a connection for each caller (the default
// keeps 2 a host and closes the others after each call), and it buffers
// enough to write a PutEvents call of ten 1 KB events, headers and body,
// in one system call instead of two. The server's work per call is the
// same.
func newBenchHTTP() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 0, 1024
	t.WriteBufferSize = 32 << 10
	return &http.Client{Timeout: 60 * time.Second, Transport: t}
}

// restart kills the server (SIGKILL) and starts it again on its data; it
// returns when the new process started.
func (s *benchServer) restart() (time.Time, error) {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	return s.start()
}

// startServing starts cmd, a `bridgeport serve`, with its stderr on ours,
// and returns the address it prints once it listens. A server that does
// not listen within a minute is killed.
func startServing(cmd *exec.Cmd) (string, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		return a, nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return "", errors.New("the server did not start within 60s")
	}
}

func (s *benchServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
		}
	}
	if s.temp {
		_ = os.RemoveAll(s.dir)
	}
}
