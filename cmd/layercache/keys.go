package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/drivers/redis"
)

// scanCount is the COUNT hint of each SCAN: enough keys per round trip to
// list quickly, few enough that no call holds Redis for long.
const scanCount = 1000

// redisTagInfix starts the keys of the Redis layer's tag indexes, after the
// layer's prefix; they are not cache entries.
const redisTagInfix = "\x00tag:"

func newKeysCmd() *cobra.Command {
	var f adminFlags
	var prefix string
	var limit int
	cmd := &cobra.Command{
		Use:   "keys [--prefix PREFIX] [--limit N]",
		Short: "List cache keys under a prefix (SCAN, never KEYS)",
		Long: `keys lists the cache keys that start with PREFIX in the stack's Redis layers,
with SCAN and a COUNT, so that Redis is never blocked however many keys it
holds. Keys are printed as the application names them, without the layer's
own prefix, one per line. Other layers cannot list their keys and are named
on stderr.`,
		Example: `  layercache keys --prefix user: --limit 20
  layercache keys --prefix cart: | xargs layercache del`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usagef("--limit must be at least 1, got %d", limit)
			}
			return runKeys(cmd, &f, prefix, limit)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVarP(&prefix, "prefix", "p", "", "list only keys that start with PREFIX")
	cmd.Flags().IntVarP(&limit, "limit", "n", 1000, "list at most N keys")
	return cmd
}

// keyInfo is one key found, for --json.
type keyInfo struct {
	Key   string `json:"key"`
	Layer string `json:"layer"`
}

func runKeys(cmd *cobra.Command, f *adminFlags, prefix string, limit int) error {
	ctx, cancel := f.context(cmd)
	defer cancel()
	s, err := openFromFlags(ctx, f)
	if err != nil {
		return err
	}
	defer s.Close()
	layers, err := s.usable(stderrOf(cmd))
	if err != nil {
		return err
	}
	var found []keyInfo
	seen := map[string]bool{}
	listed := 0
	for _, l := range layers {
		rl, ok := l.layer.(*redis.Layer)
		if !ok {
			why := "cannot list its keys"
			if l.inProcess() {
				why = "is private to each application process"
			}
			fmt.Fprintf(stderrOf(cmd), "note: %s %s\n", l.name(), why)
			continue
		}
		listed++
		keys, err := scanRedis(ctx, rl, l.block, prefix, limit-len(found))
		if err != nil {
			return fmt.Errorf("%s: %w", l.name(), err)
		}
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				found = append(found, keyInfo{Key: k, Layer: l.name()})
			}
		}
		if len(found) >= limit {
			fmt.Fprintf(stderrOf(cmd), "note: stopped at --limit %d; there may be more keys\n", limit)
			break
		}
	}
	if listed == 0 {
		return fmt.Errorf("no layer of the stack can list its keys (only Redis layers can)")
	}
	if f.json {
		if found == nil {
			found = []keyInfo{}
		}
		return writeJSON(stdoutOf(cmd), found)
	}
	for _, k := range found {
		fmt.Fprintln(stdoutOf(cmd), k.Key)
	}
	return nil
}

// scanRedis returns up to limit cache keys starting with prefix in a Redis
// layer, scanning every master of a Cluster.
func scanRedis(ctx context.Context, rl *redis.Layer, b *config.Block, prefix string, limit int) ([]string, error) {
	var client goredis.UniversalClient
	if !rl.As(&client) {
		return nil, fmt.Errorf("the layer does not expose its client")
	}
	layerPrefix, err := redisPrefix(b)
	if err != nil {
		return nil, err
	}
	match := globEscape(layerPrefix+prefix) + "*"
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c goredis.UniversalClient) error {
		it := c.Scan(ctx, 0, match, scanCount).Iterator()
		for it.Next(ctx) {
			k := strings.TrimPrefix(it.Val(), layerPrefix)
			if strings.HasPrefix(k, redisTagInfix) {
				continue
			}
			mu.Lock()
			full := len(keys) >= limit
			if !full {
				keys = append(keys, k)
			}
			mu.Unlock()
			if full {
				return nil
			}
		}
		return it.Err()
	}
	if cc, ok := client.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error { return scan(ctx, node) })
	} else {
		err = scan(ctx, client)
	}
	return keys, err
}

// redisPrefix returns the key prefix of a Redis layer's block: its prefix
// key, else the namespace and a colon, as the driver derives it.
func redisPrefix(b *config.Block) (string, error) {
	var rc redis.Config
	if err := b.Decode(&rc); err != nil {
		return "", err
	}
	if rc.Prefix == "" && b.Namespace() != "" {
		return b.Namespace() + ":", nil
	}
	return rc.Prefix, nil
}

// globEscape quotes the characters SCAN MATCH gives a meaning to.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
