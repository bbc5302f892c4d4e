// Package redistest runs real Redis for tests: throw-away redis-server
// processes, a fault-injecting TCP proxy, and small Redis Clusters.
//
// Every test that needs Redis starts its own server with [Start]. The server
// listens on a free 127.0.0.1 port, keeps its files in t.TempDir(), persists
// nothing, and is killed in t.Cleanup, so tests never share state and never
// touch a Redis that happens to run on port 6379:
//
//	s := redistest.Start(t)
//	rdb := s.Client(t) // *goredis.Client, closed in Cleanup
//	s.Do(t, "SET", "k", "v")
//
// Faults are injected on the process or on the network:
//
//   - [Server.Pause] and [Server.Resume] stop and continue the process
//     (SIGSTOP/SIGCONT): connections stay open but nothing answers, which
//     is what a stalled or overloaded Redis looks like to a client.
//   - [Server.Kill] and [Server.Restart] crash the process and bring it
//     back on the same port with an empty data set.
//   - [NewProxy] puts a TCP proxy in front of any address. It adds a delay
//     per direction ([Proxy.SetDelay]), swallows traffic so clients hang
//     until their own timeouts ([Proxy.SetBlackHole]), drops connections
//     ([Proxy.CloseConnections]) and counts connections and forwarded
//     writes, so tests can assert on round trips instead of wall time.
//
// [StartCluster] builds a Redis Cluster of n masters with redis-cli, for
// code that must work with a cluster client.
//
// [StartTLS] starts a server that speaks only TLS, with a certificate
// signed by a certificate authority it creates for that server at test time
// ([Server.TLS] has the PEM files, [Server.TLSConfig] a client
// configuration that trusts it). [Server.AddUser] makes an ACL user with
// chosen rights, and [Server.URLFor] the URL to log in as it.
//
// The harness needs redis-server (and redis-cli for clusters) on PATH. When
// they are missing, [Start], [StartCluster] and [RequireRedis] fail the test
// with a message that says how to install them; scripts/test.sh installs them
// when run as root. A missing Redis is a failure rather than a skip so that a
// green run always means the Redis tests ran.
//
// Everything here is written by hand on top of os/exec and net because the
// job is small and test-specific: the harness must control the process
// (signals, same-port restarts, log capture) and the bytes on the wire, which
// a container library or a fake server would hide. Nothing started by the
// package outlives the test that started it: processes are reaped, and
// proxy goroutines have all returned by the end of Cleanup, so packages can
// check for leaks with goleak.
package redistest
