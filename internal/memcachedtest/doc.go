// Package memcachedtest runs real memcached servers for tests.
//
// Every test that needs memcached starts its own server with [Start]. The
// server listens on a free 127.0.0.1 port (TCP only, UDP off), keeps its
// output in t.TempDir(), and is killed in t.Cleanup, so tests never share
// state and never touch a memcached that happens to run on port 11211:
//
//	s := memcachedtest.Start(t)
//	mc := s.Client(t) // *memcache.Client of github.com/bradfitz/gomemcache
//	_ = mc.Set(&memcache.Item{Key: "k", Value: []byte("v")})
//
// Extra memcached arguments follow the harness's own, so they override
// them: memcachedtest.Start(t, "-I", "4m") raises the largest item to
// 4 MiB (memcached's default is 1 MiB).
//
// Faults are injected on the process: [Server.Pause] and [Server.Resume]
// stop and continue it (SIGSTOP/SIGCONT), so connections stay open but
// nothing answers, as with a stalled server; [Server.Kill] and
// [Server.Restart] crash it and bring it back on the same port with an
// empty cache. For faults on the network, put the TCP proxy of package
// internal/redistest in front of [Server.Addr]: it forwards any protocol.
//
// The harness needs memcached on PATH. When it is missing, [Start] and
// [RequireMemcached] fail the test with a message that says how to install
// it; scripts/test.sh installs it when run as root. A missing memcached is a
// failure rather than a skip so that a green run always means the
// memcached tests ran.
//
// It is written by hand on top of os/exec and net, like internal/redistest
// and for the same reasons: the harness must own the process (signals,
// same-port restarts, output capture), which a container library or a fake
// server would hide. Nothing it starts outlives the test that started it:
// processes are reaped in Cleanup, so packages can check for leaks with
// goleak.
package memcachedtest
