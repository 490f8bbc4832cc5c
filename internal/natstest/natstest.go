// Package natstest starts NATS clusters inside tests: nats-server
// instances with JetStream, routed to each other on loopback ports.
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

// Cluster starts n nats-server instances with JetStream, routed to
// each other on loopback ports, and returns their client URLs once
// JetStream has a meta leader.
func Cluster(t testing.TB, n int) []string {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var urls []string
	for i := range n {
		opts := &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
			Cluster: natsserver.ClusterOpts{Name: "bridgeport-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  natsserver.RoutesFromStr(strings.Join(routes, ",")), NoLog: true, NoSigs: true,
		}
		ns, err := natsserver.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(ns.Shutdown)
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats node %d not ready", i)
		}
		urls = append(urls, ns.ClientURL())
	}
	// Wait for a JetStream meta leader.
	nc, err := nats.Connect(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := nc.Request("$JS.API.INFO", nil, time.Second); err == nil {
			resp, _ := nc.Request("$JS.API.INFO", nil, time.Second)
			if resp != nil && !strings.Contains(string(resp.Data), `"error"`) {
				return urls
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("JetStream cluster has no leader after 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
