package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrPermission is wrapped by the error of an access check when the server
// refuses the client's Redis user something the layer, bus or coordinator
// needs (an ACL rule is missing), or refuses its credentials.
var ErrPermission = errors.New("layercache/redis: permission denied")

// A Redis user whose ACL limits it to the cache's keys and channels works
// if it may run, on the keys and channels below:
//
//	layer:        GET MGET SET UNLINK ZRANGE RENAME EVAL EVALSHA PING and, in
//	              scripts, GETRANGE UNLINK TIME ZRANGEBYSCORE ZREM ZSCORE ZADD
//	              PTTL PEXPIRE (SCAN too, for Clear), on keys PREFIX*
//	bus:          PUBLISH SUBSCRIBE on channel layercache:NAMESPACE:bus
//	coordinator:  SET PTTL EVAL EVALSHA and, in scripts, GET PEXPIRE DEL, on
//	              keys layercache:NAMESPACE:lock:*; SUBSCRIBE and, in a
//	              script, PUBLISH on channel layercache:NAMESPACE:released
//	              (without them waiters poll)
//
// for instance
//
//	ACL SETUSER myapp on >PASSWORD ~myapp:* ~layercache:myapp:* &layercache:myapp:* \
//	    +@read +@write +@scripting +@pubsub +ping +time -@dangerous

// probeSuffix ends the key an access check touches. No cache key collides
// with it in practice, and every command of the check leaves it absent.
const probeSuffix = "\x00access-probe"

// probeScript runs, for KEYS[1], each command named in ARGV with arguments
// that change nothing when the key is absent, and reports the first that
// the user may not run as {command, error}. Scripts are checked command by
// command as they run, so this is the only way to learn, before it
// matters, that a script of the layer or the coordinator would fail.
var probeScript = goredis.NewScript(`
local k = KEYS[1]
local args = {
	GET = {k}, GETRANGE = {k, -8, -1}, UNLINK = {k}, DEL = {k}, PTTL = {k},
	PEXPIRE = {k, 1}, TIME = {}, ZRANGEBYSCORE = {k, '-inf', 0, 'LIMIT', 0, 1},
	ZREM = {k, 'p'}, ZSCORE = {k, 'p'}, ZADD = {k, 'XX', 0, 'p'},
}
for _, name in ipairs(ARGV) do
	local r = redis.pcall(name, unpack(args[name]))
	if type(r) == 'table' and r.err then
		return {name, r.err}
	end
end
return 0
`)

// accessCheck is one pipeline of harmless commands that together need every
// right a component uses.
type accessCheck struct {
	component string // "layer", "coordinator"
	pattern   string // the keys the component uses, as an ACL pattern
	user      string
	steps     []accessStep
}

type accessStep struct {
	command string // as granted: "get", "eval"
	cmd     goredis.Cmder
	script  bool   // a probeScript run: its result names a refused command
	ran     string // an error reply that still means the command ran
}

// CheckAccess checks, with one pipeline of commands that change nothing,
// that the client's Redis user may run every command the layer sends, on
// the layer's keys, including the commands its scripts run. It returns an
// error wrapping [ErrPermission] that names the missing right (a command,
// or the key pattern) when the server refuses one, or refuses the
// credentials. A server it cannot reach is not its concern: it returns
// nil, and the cache's degradation handling deals with that.
//
// The "redis" driver calls it when it opens a layer from configuration, so
// that layercache.Open fails at once for a user without rights; [New] does
// not contact the server.
func (l *Layer) CheckAccess(ctx context.Context) error {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	k := l.prefix + probeSuffix
	tk := l.tagKey(probeSuffix)
	pipe := l.client.Pipeline()
	c := accessCheck{component: "layer", pattern: globEscape(l.prefix) + "*", user: username(l.client)}
	c.add("get", pipe.Get(ctx, k), "")
	c.add("mget", pipe.MGet(ctx, k), "")
	c.add("set", pipe.SetArgs(ctx, k, "", goredis.SetArgs{Mode: "XX", TTL: time.Millisecond}), "")
	c.add("unlink", pipe.Unlink(ctx, k), "")
	c.add("zrange", pipe.ZRange(ctx, tk, 0, 0), "")
	c.add("rename", pipe.Rename(ctx, tk, tk+":gone:probe"), "ERR no such key")
	c.addScript(ctx, pipe, k, "GETRANGE", "UNLINK")
	c.addScript(ctx, pipe, tk, "TIME", "ZRANGEBYSCORE", "ZREM", "ZSCORE", "ZADD", "PTTL", "PEXPIRE")
	return c.run(ctx, pipe)
}

// CheckAccess checks, as [Layer.CheckAccess] does, that the client's Redis
// user may take, renew, release and wait for load locks. Notifications of
// releases are not checked: without rights on their channel, waiters poll.
func (c *Coordinator) CheckAccess(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	k := c.LockKey(probeSuffix)
	pipe := c.client.Pipeline()
	ch := accessCheck{component: "coordinator", pattern: globEscape(c.prefix) + "*", user: username(c.client)}
	ch.add("set", pipe.SetArgs(ctx, k, "", goredis.SetArgs{Mode: "XX", TTL: time.Millisecond}), "")
	ch.add("pttl", pipe.PTTL(ctx, k), "")
	ch.addScript(ctx, pipe, k, "GET", "PEXPIRE", "DEL")
	return ch.run(ctx, pipe)
}

func (c *accessCheck) add(command string, cmd goredis.Cmder, ran string) {
	c.steps = append(c.steps, accessStep{command: command, cmd: cmd, ran: ran})
}

// addScript runs probeScript on key for commands, with EVAL and then with
// EVALSHA, which is how the scripts of the layer and coordinator run.
func (c *accessCheck) addScript(ctx context.Context, pipe goredis.Pipeliner, key string, commands ...string) {
	args := make([]any, len(commands))
	for i, name := range commands {
		args[i] = name
	}
	c.steps = append(c.steps,
		accessStep{command: "eval", cmd: probeScript.Eval(ctx, pipe, []string{key}, args...), script: true},
		accessStep{command: "evalsha", cmd: probeScript.EvalSha(ctx, pipe, []string{key}, args...), script: true})
}

// run sends the pipeline and reads the verdicts.
func (c *accessCheck) run(ctx context.Context, pipe goredis.Pipeliner) error {
	// Every command carries its own error, except when the connection
	// could not be made or logged in: then only Exec reports it.
	_, err := pipe.Exec(ctx)
	switch {
	case err == nil:
	case isAuthError(err):
		return c.credentials(err)
	case !isServerError(err):
		// Unreachable, or too slow: not an answer about rights.
		return nil
	}
	var denied []error
	seen := make(map[string]bool)
	deny := func(err error) {
		// EVAL and EVALSHA of one script are refused alike: say it once.
		if !seen[err.Error()] {
			seen[err.Error()] = true
			denied = append(denied, err)
		}
	}
	for _, s := range c.steps {
		err := s.cmd.Err()
		switch {
		case err == nil:
			if s.script {
				if r, ok := s.cmd.(*goredis.Cmd).Val().([]any); ok && len(r) == 2 {
					name, _ := r[0].(string)
					msg, _ := r[1].(string)
					deny(c.denied(strings.ToLower(name), msg, true))
				}
			}
		case errors.Is(err, goredis.Nil), s.ran != "" && strings.HasPrefix(err.Error(), s.ran):
		case isAuthError(err):
			return c.credentials(err)
		case isPermissionError(err):
			deny(c.denied(s.command, err.Error(), false))
		case !isServerError(err):
			// Unreachable, or too slow: not an answer about rights.
			return nil
		}
	}
	return errors.Join(denied...)
}

func (c *accessCheck) credentials(err error) error {
	return fmt.Errorf("%w: %s: the server refuses the credentials of Redis user %q: %v", ErrPermission, c.component, c.user, err)
}

// denied describes one refusal: of a command, or of the keys.
func (c *accessCheck) denied(command, reply string, inScript bool) error {
	if strings.Contains(reply, "key") {
		return fmt.Errorf("%w: %s: Redis user %q may not use the keys %s (grant them with ACL SETUSER %s ~%s): %s",
			ErrPermission, c.component, c.user, c.pattern, c.user, c.pattern, reply)
	}
	where := ""
	if inScript {
		where = " in a script"
	}
	return fmt.Errorf("%w: %s: Redis user %q may not run %s%s (grant it with ACL SETUSER %s +%s): %s",
		ErrPermission, c.component, c.user, strings.ToUpper(command), where, c.user, command, reply)
}

// isPermissionError reports whether err is a refusal by an ACL: a NOPERM
// reply, or the error a script gets for a command or key it may not use.
func isPermissionError(err error) bool {
	if !isServerError(err) {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "NOPERM") || strings.Contains(msg, "The user executing the script can't")
}

// isAuthError reports whether err says the credentials were refused.
func isAuthError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"WRONGPASS", "NOAUTH", "ERR AUTH", "ERR invalid password", "ERR Client sent AUTH"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, "failed to authenticate: "+p) {
			return true
		}
	}
	return false
}

// username returns the Redis user a client logs in as.
func username(c goredis.UniversalClient) string {
	var u string
	switch c := c.(type) {
	case *goredis.Client:
		u = c.Options().Username
	case *goredis.ClusterClient:
		u = c.Options().Username
	}
	if u == "" {
		return "default"
	}
	return u
}
