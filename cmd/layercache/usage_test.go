package main

import (
	"strings"
	"testing"
)

func TestUsage_BadCallsExitTwoWithAHint(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no verb", nil, "a verb is required"},
		{"unknown verb", []string{"fetch"}, `unknown command "fetch"`},
		{"unknown flag", []string{"get", "--nope", "k"}, "unknown flag: --nope"},
		{"missing key", []string{"get"}, "want KEY"},
		{"two keys", []string{"inspect", "a", "b"}, "want KEY"},
		{"del without keys", []string{"del"}, "at least one KEY"},
		{"bad duration", []string{"ping", "--timeout", "soon"}, `invalid argument "soon"`},
		{"keys limit zero", []string{"keys", "--limit", "0"}, "--limit must be at least 1"},
		{"invalidate nothing", []string{"invalidate"}, "give --tag TAG"},
		{"invalidate both", []string{"invalidate", "--tag", "a", "--prefix", "b"}, "exclude each other"},
		{"invalidate empty prefix", []string{"invalidate", "--prefix", ""}, "must not be empty"},
		{"raw and json", []string{"get", "--raw", "--json", "k"}, "exclude each other"},
		{"bench format", []string{"bench", "--format", "xml"}, "--format must be markdown or json"},
		{"bench scenario", []string{"bench", "--scenario", "warm-hit,nope"}, `unknown scenario "nope"`},
		{"bench redis url", []string{"bench", "--redis", "http://x", "--scenario", "stampede"}, "not a valid redis:// URL"},
		{"demo dir and config", []string{"demo", "--dir", "d", "--config", "c"}, "exclude each other"},
		{"stray argument", []string{"ping", "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, tc.args...)
			wantCode(t, r, exitUsage)
			wantIn(t, "stderr", r.stderr, tc.want, "--help' for usage")
			if r.stdout != "" {
				t.Errorf("stdout should be empty, got %q", r.stdout)
			}
		})
	}
}

func TestUsage_EveryVerbHasHelp(t *testing.T) {
	for _, verb := range []string{"demo", "bench", "stats", "get", "del", "invalidate", "keys", "inspect", "ping"} {
		t.Run(verb, func(t *testing.T) {
			r := cli(t, verb, "--help")
			wantCode(t, r, exitOK)
			wantIn(t, "help", r.stdout, "Usage:\n  layercache "+verb, "--help")
		})
	}
	r := cli(t, "--help")
	wantCode(t, r, exitOK)
	for _, verb := range []string{"demo", "bench", "stats", "get", "del", "invalidate", "keys", "inspect", "ping"} {
		wantIn(t, "root help", r.stdout, "\n  "+verb+" ")
	}
	if strings.Contains(r.stdout, "bench-worker") {
		t.Errorf("root help lists the internal bench-worker verb:\n%s", r.stdout)
	}
}

func TestUsage_ReadVerbsTakeJSON(t *testing.T) {
	for _, verb := range []string{"stats", "get", "keys", "inspect", "ping"} {
		r := cli(t, verb, "--help")
		wantIn(t, verb+" help", r.stdout, "--json")
	}
}
