package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/layercache/layercache"
)

func newDelCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "del KEY...",
		Short: "Delete keys from every layer, and tell every instance",
		Long: `del deletes the keys through the cache, as the application's own Delete does:
from every layer this command can open, then on the invalidation bus, so that
every running instance drops them from its memory and disk layers.`,
		Example: `  layercache del user:42 user:43`,
		Args:    minArgs(1, "at least one KEY"),
		RunE: func(cmd *cobra.Command, keys []string) error {
			return withCache(cmd, &f, func(ctx context.Context, c *layercache.Cache) error {
				if err := c.Delete(ctx, keys...); err != nil {
					return err
				}
				fmt.Fprintf(stdoutOf(cmd), "deleted %d key(s)\n", len(keys))
				return nil
			})
		},
	}
	f.register(cmd, false)
	return cmd
}

// prefixInvalidator is implemented by caches that can invalidate every key
// under a prefix.
type prefixInvalidator interface {
	InvalidatePrefix(ctx context.Context, prefix string) error
}

func newInvalidateCmd() *cobra.Command {
	var f adminFlags
	var tags []string
	var prefix string
	cmd := &cobra.Command{
		Use:   "invalidate --tag TAG... | --prefix PREFIX",
		Short: "Invalidate entries by tag (or by key prefix), on every instance",
		Long: `invalidate removes every entry carrying one of the tags from every layer this
command can open, then tells every running instance through the invalidation
bus, as the application's own InvalidateTags does.`,
		Example: `  layercache invalidate --tag users
  layercache invalidate --tag users --tag orders
  layercache invalidate --tag users,orders`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hasPrefix := cmd.Flags().Changed("prefix")
			switch {
			case len(tags) == 0 && !hasPrefix:
				return usagef("give --tag TAG (repeatable) or --prefix PREFIX")
			case len(tags) > 0 && hasPrefix:
				return usagef("--tag and --prefix exclude each other")
			case hasPrefix && prefix == "":
				return usagef("--prefix must not be empty (that would be every key)")
			}
			for _, t := range tags {
				if t == "" {
					return usagef("--tag must not be empty")
				}
			}
			return withCache(cmd, &f, func(ctx context.Context, c *layercache.Cache) error {
				if hasPrefix {
					pi, ok := any(c).(prefixInvalidator)
					if !ok {
						return errors.New("invalidate --prefix is not supported by this version of layercache; " +
							"list the keys with 'layercache keys --prefix P' and delete them with 'layercache del', or use tags")
					}
					if err := pi.InvalidatePrefix(ctx, prefix); err != nil {
						return err
					}
					fmt.Fprintf(stdoutOf(cmd), "invalidated keys under prefix %q\n", prefix)
					return nil
				}
				if err := c.InvalidateTags(ctx, tags...); err != nil {
					return err
				}
				fmt.Fprintf(stdoutOf(cmd), "invalidated %d tag(s)\n", len(tags))
				return nil
			})
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringSliceVarP(&tags, "tag", "t", nil, "a tag to invalidate (repeatable, or comma-separated)")
	cmd.Flags().StringVar(&prefix, "prefix", "", "invalidate every key that starts with PREFIX")
	return cmd
}

// withCache opens the configured cache for a write, runs fn and closes the
// cache, which waits for the bus to have sent the change.
func withCache(cmd *cobra.Command, f *adminFlags, fn func(context.Context, *layercache.Cache) error) (err error) {
	ctx, cancel := f.context(cmd)
	defer cancel()
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	c, err := openCache(ctx, cfg, stderrOf(cmd))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	return fn(ctx, c)
}
