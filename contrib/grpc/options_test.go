package grpccache_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/layercache/layercache"
	grpccache "github.com/layercache/layercache/contrib/grpc"
	"github.com/layercache/layercache/contrib/grpc/internal/testpb"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestOptions_InvalidPanicsAtConstructionWithAClearMessage(t *testing.T) {
	c := newCache(t)
	search := testpb.Catalog_Search_FullMethodName
	one := func(name string, m grpccache.Method) grpccache.Options {
		return grpccache.Options{Methods: map[string]grpccache.Method{name: m}}
	}
	cases := []struct {
		name  string
		cache *layercache.Cache
		opts  grpccache.Options
		want  string
	}{
		{"nil cache", nil, one(search, grpccache.Method{}), "nil *layercache.Cache"},
		{"no leading slash", c, one("layercache.grpccache.testpb.Catalog/Search", grpccache.Method{}), "not a full method name"},
		{"no method", c, one("/layercache.grpccache.testpb.Catalog/", grpccache.Method{}), "not a full method name"},
		{"unknown service", c, one("/no.such.Service/Get", grpccache.Method{}), "service no.such.Service is not in the protobuf registry"},
		{"unknown method", c, one("/layercache.grpccache.testpb.Catalog/Browse", grpccache.Method{}), "has no method Browse"},
		{"a message, not a service", c, one("/layercache.grpccache.testpb.Item/Search", grpccache.Method{}), "is not a service"},
		{"streaming method", c, one(testpb.Catalog_Watch_FullMethodName, grpccache.Method{}), "streaming method"},
		{"negative TTL", c, one(search, grpccache.Method{TTL: -time.Second}), "TTL is negative"},
		{"empty tag", c, one(search, grpccache.Method{Tags: []string{"ok", ""}}), "Tags[1] is empty"},
		{"OK cached", c, one(search, grpccache.Method{CachedErrors: map[codes.Code]time.Duration{codes.OK: time.Second}}), "codes.OK"},
		{"Canceled cached", c, one(search, grpccache.Method{CachedErrors: map[codes.Code]time.Duration{codes.Canceled: time.Second}}), "caller's own context"},
		{"DeadlineExceeded cached", c, one(search, grpccache.Method{CachedErrors: map[codes.Code]time.Duration{codes.DeadlineExceeded: time.Second}}), "caller's own context"},
		{"unknown code", c, one(search, grpccache.Method{CachedErrors: map[codes.Code]time.Duration{99: time.Second}}), "code 99"},
		{"zero error TTL", c, one(search, grpccache.Method{CachedErrors: map[codes.Code]time.Duration{codes.NotFound: 0}}), "must be positive"},
		{"the bad one of several", c, grpccache.Options{Methods: map[string]grpccache.Method{
			search:                               {TTL: time.Minute},
			healthpb.Health_Check_FullMethodName: {TTL: -1},
		}}, `Methods["/grpc.health.v1.Health/Check"]: TTL is negative`},
	}
	constructors := map[string]func(*layercache.Cache, grpccache.Options){
		"UnaryServerInterceptor": func(c *layercache.Cache, o grpccache.Options) { grpccache.UnaryServerInterceptor(c, o) },
		"UnaryClientInterceptor": func(c *layercache.Cache, o grpccache.Options) { grpccache.UnaryClientInterceptor(c, o) },
	}
	for ctor, build := range constructors {
		for _, tc := range cases {
			t.Run(ctor+"/"+tc.name, func(t *testing.T) {
				msg := panicMessage(func() { build(tc.cache, tc.opts) })
				if !strings.HasPrefix(msg, "grpccache: "+ctor+": ") || !strings.Contains(msg, tc.want) {
					t.Fatalf("panic %q; want one from %s mentioning %q", msg, ctor, tc.want)
				}
			})
		}
	}
}

func TestOptions_ValidDoNotPanic(t *testing.T) {
	c := newCache(t)
	o := grpccache.Options{Methods: map[string]grpccache.Method{
		testpb.Catalog_Search_FullMethodName: {
			TTL:          time.Minute,
			Tags:         []string{"catalog"},
			CachedErrors: map[codes.Code]time.Duration{codes.NotFound: time.Second, codes.InvalidArgument: time.Minute},
		},
		healthpb.Health_Check_FullMethodName: {}, // the cache's default TTL
	}}
	if msg := panicMessage(func() { grpccache.UnaryServerInterceptor(c, o); grpccache.UnaryClientInterceptor(c, o) }); msg != "" {
		t.Fatalf("valid options panicked: %s", msg)
	}
	if msg := panicMessage(func() { grpccache.UnaryServerInterceptor(c, grpccache.Options{}) }); msg != "" {
		t.Fatalf("empty options panicked: %s", msg)
	}
}

func panicMessage(f func()) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprint(p)
		}
	}()
	f()
	return ""
}
