package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
)

// benchKeyspace starts every key and channel the benchmarks use.
const benchKeyspace = "layercache-bench"

// benchEnv is what the scenarios share: the Redis server and the means to
// build stacks on it.
type benchEnv struct {
	redis   *goredis.Options // how to reach the server; Addr is changed to reach it through a proxy
	url     string           // the same, for worker processes
	version string           // the server's version
	owned   *exec.Cmd        // the redis-server started for the run, if any
	dir     string           // its working directory
	run     string           // this run's id, in every key and channel
	stacks  int              // stacks opened so far, to name their keyspaces
	log     io.Writer
	httpDur time.Duration
}

func newBenchEnv(ctx context.Context, f *benchFlags, log io.Writer) (_ *benchEnv, err error) {
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	e := &benchEnv{run: hex.EncodeToString(id), log: log, httpDur: f.httpTime}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	e.url = f.redisURL
	if f.redisURL != "" {
		if e.redis, err = goredis.ParseURL(f.redisURL); err != nil {
			return nil, usagef("--redis: not a valid redis:// URL")
		}
	} else {
		if err := e.startRedis(ctx); err != nil {
			return nil, err
		}
	}
	c := e.rawClient(e.redis.Addr, 0)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return nil, fmt.Errorf("redis at %s: %w", e.redis.Addr, err)
	}
	e.version = parseInfo(info)["redis_version"]
	return e, nil
}

// startRedis starts a redis-server on a free loopback port, persisting
// nothing, and waits until it answers.
func (e *benchEnv) startRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server is not on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or give --redis URL")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	if e.dir, err = os.MkdirTemp("", "layercache-bench-"); err != nil {
		return err
	}
	e.owned = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", e.dir, "--logfile", "redis.log")
	if err := e.owned.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	e.redis = &goredis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	e.url = "redis://" + e.redis.Addr + "/0"
	c := e.rawClient(e.redis.Addr, 0)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Ping(ctx).Err(); err == nil {
			return nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redis-server on port %d did not answer: %w%s", port, err, e.redisLogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *benchEnv) redisLogTail() string {
	b, err := os.ReadFile(e.dir + "/redis.log")
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return "\nredis.log:\n" + strings.Join(lines[max(len(lines)-5, 0):], "\n")
}

// Close removes the run's keys from a Redis it did not start, and stops
// the one it started.
func (e *benchEnv) Close() {
	if e.owned != nil {
		_ = e.owned.Process.Kill()
		_ = e.owned.Wait()
		_ = os.RemoveAll(e.dir)
		return
	}
	if e.redis == nil {
		return
	}
	c := e.rawClient(e.redis.Addr, 0)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := c.Scan(ctx, 0, benchKeyspace+":"+e.run+":*", scanCount).Iterator()
	var batch []string
	for it.Next(ctx) {
		if batch = append(batch, it.Val()); len(batch) == 500 {
			c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		c.Unlink(ctx, batch...)
	}
}

// rawClient returns a client for addr with the server's credentials.
// A timeout above zero bounds every operation as a configured layer's
// client does (socket deadlines and pool wait, one attempt); zero keeps
// go-redis's defaults.
func (e *benchEnv) rawClient(addr string, timeout time.Duration) *goredis.Client {
	o := *e.redis
	o.Addr = addr
	o.ContextTimeoutEnabled = true
	if timeout > 0 {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
		o.MaxRetries, o.DialerRetries = -1, 1
	}
	return goredis.NewClient(&o)
}

// stackSpec describes a stack for a scenario.
type stackSpec struct {
	memory  bool
	maxSize int // memory entries; 0 for the default
	redis   bool
	via     *proxy        // reach Redis through this proxy
	timeout time.Duration // Redis operation timeout; 0 for the default 100ms
	bus     bool
	coord   bool
	space   string // the keyspace, shared by stacks that must see each other; "" for a new one
	opts    []layercache.Option
}

// benchStack is an open stack and the parts a scenario looks at.
type benchStack struct {
	*layercache.Cache
	l1     *memory.Layer
	client *goredis.Client
	space  string
}

// Close closes the cache, then the client it does not own.
func (s *benchStack) Close() error {
	err := s.Cache.Close()
	if s.client != nil {
		err = errors.Join(err, s.client.Close())
	}
	return err
}

// newSpace returns a keyspace name no other stack of the run uses.
func (e *benchEnv) newSpace() string {
	e.stacks++
	return fmt.Sprintf("%s:%s:%d", benchKeyspace, e.run, e.stacks)
}

func (e *benchEnv) open(s stackSpec) (*benchStack, error) {
	st := &benchStack{space: s.space}
	if st.space == "" {
		st.space = e.newSpace()
	}
	var layers []driver.Layer
	if s.memory {
		l1, err := memory.New(memory.Options{MaxSize: s.maxSize})
		if err != nil {
			return nil, err
		}
		st.l1 = l1
		layers = append(layers, l1)
	}
	opts := []layercache.Option{layercache.WithNamespace(st.space)}
	if s.redis {
		timeout := s.timeout
		if timeout == 0 {
			timeout = redis.DefaultTimeout
		}
		addr := e.redis.Addr
		if s.via != nil {
			addr = s.via.Addr()
		}
		st.client = e.rawClient(addr, timeout)
		l2, err := redis.New(redis.Options{Client: st.client, Prefix: st.space + ":", Timeout: timeout})
		if err != nil {
			return nil, errors.Join(err, st.client.Close())
		}
		layers = append(layers, l2)
		if s.bus {
			b, err := redis.NewBus(redis.BusOptions{Client: st.client, Namespace: st.space})
			if err != nil {
				return nil, errors.Join(err, st.client.Close())
			}
			opts = append(opts, layercache.WithBus(b))
		}
		if s.coord {
			co, err := redis.NewCoordinator(redis.CoordinatorOptions{Client: st.client, Namespace: st.space})
			if err != nil {
				return nil, errors.Join(err, st.client.Close())
			}
			opts = append(opts, layercache.WithCoordinator(co))
		}
	}
	c, err := layercache.New(layers, append(opts, s.opts...)...)
	if err != nil {
		if st.client != nil {
			err = errors.Join(err, st.client.Close())
		}
		return nil, err
	}
	st.Cache = c
	return st, nil
}

// machine describes where the run happens.
func (e *benchEnv) machine() []fact {
	cpu := strconv.Itoa(runtime.NumCPU()) + " CPUs"
	if model := procField("/proc/cpuinfo", "model name"); model != "" {
		cpu += ", " + model
	}
	facts := []fact{
		{"CPU", fmt.Sprintf("%s (GOMAXPROCS %d)", cpu, runtime.GOMAXPROCS(0))},
	}
	if kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		facts = append(facts, fact{"memory", fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))})
	}
	osName := runtime.GOOS + "/" + runtime.GOARCH
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		osName += ", kernel " + strings.TrimSpace(string(rel))
	}
	facts = append(facts, fact{"OS", osName}, fact{"Go", runtime.Version()})
	where := "started by the benchmark on a loopback port"
	if e.owned == nil {
		where = "given with --redis"
	}
	facts = append(facts, fact{"Redis", e.version + ", " + where})
	if info, ok := debug.ReadBuildInfo(); ok {
		rev, modified := "", ""
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (with uncommitted changes)"
				}
			}
		}
		if rev != "" {
			facts = append(facts, fact{"layercache", "commit " + rev + modified})
		}
	}
	facts = append(facts, fact{"date", time.Now().UTC().Format("2006-01-02")})
	return facts
}

// procField returns the value of the first "name : value" line of a /proc
// file, or "".
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
