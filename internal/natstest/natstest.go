// Package natstest starts NATS clusters inside tests: nats-server
// instances with JetStream, routed to each other on loopback ports, that
// a test can stop and start again.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Nodes is a NATS cluster started by a test. Each node keeps its ports
// and its store directory across Stop and Start, as a restarted host
// would.
type Nodes struct {
	t       testing.TB
	opts    []*natsserver.Options
	servers []*natsserver.Server
	// URLs are the nodes' client URLs, in order.
	URLs []string
}

// Cluster starts n nodes and returns their client URLs once JetStream
// has a meta leader.
func Cluster(t testing.TB, n int) []string {
	t.Helper()
	c := Start(t, n)
	c.WaitLeader()
	return c.URLs
}

// running admits one cluster at a time into a test process; a test that
// starts one waits until the cluster of another has stopped. Several
// clusters of three servers at once, under the race detector on two busy
// cores, starved each other: in one CI run TestClusterNodes delivered
// fewer than 200 events in a minute and a node of TestClusterStartTogether
// could not create its streams in one. It is the package's only state,
// shared by every test of a process, as the CPU is.
var running = make(chan struct{}, 1)

// Start starts n nodes without waiting for them to elect a JetStream
// meta leader. A test starts one cluster at most: the cluster holds its
// process's turn until the test ends.
//
// Its ports are found free and then let go (freePorts) before the nodes
// bind them, so another test of the process can take one in between (an
// httptest server, a client connection's local port): that node then
// never listens. A cluster whose node is not ready within firstStart is
// stopped and started again on other ports, up to three times.
func Start(t testing.TB, n int) *Nodes {
	t.Helper()
	running <- struct{}{}
	t.Cleanup(func() { <-running }) // after the nodes stop: cleanups run last first
	c := &Nodes{t: t, servers: make([]*natsserver.Server, n)}
	for attempt := 1; ; attempt++ {
		c.configure(n)
		if attempt == 1 {
			// After configure's first TempDir, whose removal is a cleanup
			// too: cleanups run last first, so the nodes stop before their
			// store directories are removed.
			t.Cleanup(c.stopAll)
		}
		failed := -1
		for i := range n {
			if !c.start(i, firstStart) {
				failed = i
				break
			}
		}
		if failed < 0 {
			return c
		}
		c.stopAll()
		if attempt == 3 {
			t.Fatalf("nats node %d not ready after %s, three times on different ports", failed, firstStart)
		}
	}
}

// firstStart bounds how long a new node may take to listen: an empty
// store, so seconds at most even on a busy machine.
const firstStart = 20 * time.Second

// configure gives the n nodes new ports and store directories.
func (c *Nodes) configure(n int) {
	c.opts, c.URLs = nil, nil
	clientPorts, clusterPorts := freePorts(c.t, n), freePorts(c.t, n)
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	for i := range n {
		c.opts = append(c.opts, &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: clientPorts[i], JetStream: true, StoreDir: c.t.TempDir(),
			Cluster: natsserver.ClusterOpts{Name: "bridgeport-test", Host: "127.0.0.1", Port: clusterPorts[i]},
			Routes:  natsserver.RoutesFromStr(strings.Join(routes, ",")), NoLog: true, NoSigs: true,
			MaxPayload: 4 << 20,
		})
		c.URLs = append(c.URLs, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
}

// freePorts finds n loopback ports nothing listens on.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// StartNode starts node i (again), on its ports and store directory.
func (c *Nodes) StartNode(i int) {
	c.t.Helper()
	// A restarted node recovers its streams before it listens.
	if !c.start(i, time.Minute) {
		c.t.Fatalf("nats node %d not ready after a minute", i)
	}
}

// start starts node i and reports whether it listens within wait; if not,
// it is shut down again.
func (c *Nodes) start(i int, wait time.Duration) bool {
	c.t.Helper()
	o := *c.opts[i]
	ns, err := natsserver.NewServer(&o)
	if err != nil {
		c.t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return false
	}
	c.servers[i] = ns
	return true
}

// Stop shuts node i down, as if its host went away; its store stays.
func (c *Nodes) Stop(i int) {
	if ns := c.servers[i]; ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		c.servers[i] = nil
	}
}

// stopAll stops every running node.
func (c *Nodes) stopAll() {
	for i := range c.servers {
		c.Stop(i)
	}
}

// Name is node i's server name, as JetStream's cluster info gives it.
func (c *Nodes) Name(i int) string { return c.opts[i].ServerName }

// Index is the index of the node named name, or -1.
func (c *Nodes) Index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// WaitLeader waits until JetStream answers through a running node, which
// it does once the cluster has a meta leader.
func (c *Nodes) WaitLeader() {
	c.t.Helper()
	var url string
	for i, ns := range c.servers {
		if ns != nil {
			url = c.URLs[i]
			break
		}
	}
	nc, err := nats.Connect(url)
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := nc.Request("$JS.API.INFO", nil, time.Second)
		if err == nil && !strings.Contains(string(resp.Data), `"error"`) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal("JetStream cluster has no leader after a minute")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
