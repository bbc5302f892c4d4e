package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

const (
	// clusterCreateTimeout bounds redis-cli --cluster create, which polls
	// once a second until the nodes agree.
	clusterCreateTimeout = 60 * time.Second
	// clusterReadyTimeout bounds the wait for cluster_state:ok everywhere.
	clusterReadyTimeout = 30 * time.Second
)

// Cluster is a Redis Cluster of masters only, each a [Server] owned by the
// test that started it.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts n redis-server processes (n >= 3) with cluster mode
// on, joins them into a cluster of n masters without replicas using
// `redis-cli --cluster create`, and waits until every node reports
// cluster_state:ok and knows all n nodes. The nodes are stopped in t.Cleanup.
//
// With no replicas, a killed or paused node's slots are unavailable until it
// is back; the other nodes mark the cluster as failed after the default
// cluster-node-timeout of 15 seconds. A restarted node keeps its identity
// and slots (they live in its nodes.conf) but not its keys.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: StartCluster needs at least 3 masters, got %d", n)
	}
	RequireRedis(t)
	requireCLI(t)

	c := &Cluster{}
	for range n {
		c.nodes = append(c.nodes, start(t, true, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
		}))
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterCreateTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	for _, s := range c.nodes {
		if err := waitClusterOK(s, n); err != nil {
			t.Fatalf("redistest: cluster node %s: %v\nredis-cli output:\n%s", s.Addr(), err, out)
		}
	}
	return c
}

// waitClusterOK polls CLUSTER INFO until the node sees a healthy cluster of
// n nodes with every slot assigned.
func waitClusterOK(s *Server, n int) error {
	want := []string{
		"cluster_state:ok",
		"cluster_slots_assigned:16384",
		"cluster_known_nodes:" + strconv.Itoa(n),
	}
	deadline := time.Now().Add(clusterReadyTimeout)
	last := ""
	for time.Now().Before(deadline) {
		info, err := rawDo(s.dialer(), s.password, time.Second, "CLUSTER", "INFO")
		if err != nil {
			last = err.Error()
		} else {
			last = info
			if hasLines(info, want) {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cluster not ready after %v; last CLUSTER INFO:\n%s", clusterReadyTimeout, last)
}

// hasLines reports whether every wanted line appears in an INFO-style reply.
func hasLines(info string, want []string) bool {
	lines := make(map[string]bool)
	for l := range strings.SplitSeq(info, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, w := range want {
		if !lines[w] {
			return false
		}
	}
	return true
}

// Addrs returns the addresses of the nodes, "127.0.0.1:PORT" each.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Nodes returns the nodes, in the order of [Cluster.Addrs]. Each can be
// paused, killed and restarted like any [Server].
func (c *Cluster) Nodes() []*Server {
	return append([]*Server(nil), c.nodes...)
}

// Client returns a new go-redis cluster client seeded with every node's
// address, ContextTimeoutEnabled, and otherwise go-redis's defaults. It is
// closed in t.Cleanup.
func (c *Cluster) Client(t testing.TB) *goredis.ClusterClient {
	t.Helper()
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
