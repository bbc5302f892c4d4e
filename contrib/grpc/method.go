package grpccache

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/layercache/layercache"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// method is one listed method, checked and ready for calls.
type method struct {
	name      string
	keyPrefix string
	response  protoreflect.MessageType

	ttl         time.Duration
	tags        []string
	requestTags func(proto.Message) []string
	errorTTL    map[codes.Code]time.Duration
	identity    func(context.Context) (string, error)

	// entryOptions are the options of every call when there are no
	// request tags, built once so that a call allocates none. The cache
	// only reads them.
	entryOptions []layercache.EntryOption
}

// compile checks o and builds the methods of one interceptor, panicking
// with a message that names the constructor and the method at fault.
func compile(c *layercache.Cache, o Options, constructor, keySpace string) map[string]*method {
	fail := func(format string, args ...any) {
		panic("grpccache: " + constructor + ": " + fmt.Sprintf(format, args...))
	}
	if c == nil {
		fail("nil *layercache.Cache")
	}
	methods := make(map[string]*method, len(o.Methods))
	// Sorted, so that of several mistakes the same one is reported each time.
	names := make([]string, 0, len(o.Methods))
	for name := range o.Methods {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m, err := newMethod(name, o.Methods[name], keySpace)
		if err != nil {
			fail("Options.Methods[%q]: %v", name, err)
		}
		methods[name] = m
	}
	return methods
}

func newMethod(name string, spec Method, keySpace string) (*method, error) {
	response, err := responseType(name)
	if err != nil {
		return nil, err
	}
	if spec.TTL < 0 {
		return nil, fmt.Errorf("TTL is negative (%v)", spec.TTL)
	}
	for i, t := range spec.Tags {
		if t == "" {
			return nil, fmt.Errorf("Tags[%d] is empty", i)
		}
	}
	for code, ttl := range spec.CachedErrors {
		if err := checkCachedError(code, ttl); err != nil {
			return nil, err
		}
	}
	m := &method{
		name:        name,
		keyPrefix:   "grpccache:" + keySpace + ":" + name + ":",
		response:    response,
		ttl:         spec.TTL,
		tags:        slices.Clip(slices.Clone(spec.Tags)),
		requestTags: spec.RequestTags,
		identity:    spec.Identity,
	}
	if len(spec.CachedErrors) > 0 {
		m.errorTTL = make(map[codes.Code]time.Duration, len(spec.CachedErrors))
		for code, ttl := range spec.CachedErrors {
			m.errorTTL[code] = ttl
		}
	}
	m.entryOptions = m.optionsWithTags(m.tags)
	return m, nil
}

func checkCachedError(code codes.Code, ttl time.Duration) error {
	switch {
	case code == codes.OK:
		return fmt.Errorf("CachedErrors lists codes.OK, which is not an error")
	case code == codes.Canceled || code == codes.DeadlineExceeded:
		return fmt.Errorf("CachedErrors lists codes.%v, which describes the caller's own context, not the answer: it cannot be shared", code)
	case code > codes.Unauthenticated:
		return fmt.Errorf("CachedErrors lists code %d, which is not a gRPC status code", uint32(code))
	case ttl <= 0:
		return fmt.Errorf("CachedErrors[codes.%v] is %v; it must be positive", code, ttl)
	}
	return nil
}

// responseType finds the response type of a unary method in the protobuf
// registry, from its full name "/package.Service/Method".
func responseType(name string) (protoreflect.MessageType, error) {
	service, methodName, ok := splitMethodName(name)
	if !ok {
		return nil, fmt.Errorf("not a full method name; want \"/package.Service/Method\"")
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, fmt.Errorf("service %s is not in the protobuf registry (is its generated package imported?)", service)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", service)
	}
	md := sd.Methods().ByName(protoreflect.Name(methodName))
	if md == nil {
		return nil, fmt.Errorf("service %s has no method %s", service, methodName)
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, fmt.Errorf("a streaming method; only unary calls can be cached")
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, fmt.Errorf("response type %s is not in the protobuf registry", md.Output().FullName())
	}
	return mt, nil
}

func splitMethodName(name string) (service, method string, ok bool) {
	rest, ok := strings.CutPrefix(name, "/")
	if !ok {
		return "", "", false
	}
	service, method, ok = strings.Cut(rest, "/")
	if !ok || service == "" || method == "" || strings.Contains(method, "/") {
		return "", "", false
	}
	return service, method, true
}

// optionsWithTags returns the entry options of a call whose entry carries
// tags. All tags go in one WithTags, which reads the same whether the cache
// adds up the tags of several WithTags options or keeps the last.
func (m *method) optionsWithTags(tags []string) []layercache.EntryOption {
	var opts []layercache.EntryOption
	if m.ttl > 0 {
		opts = append(opts, layercache.WithTTL(m.ttl))
	}
	if len(tags) > 0 {
		opts = append(opts, layercache.WithTags(tags...))
	}
	return opts
}

// optionsFor returns the entry options of one call.
func (m *method) optionsFor(req proto.Message) []layercache.EntryOption {
	if m.requestTags == nil {
		return m.entryOptions
	}
	extra := m.requestTags(req)
	if len(extra) == 0 {
		return m.entryOptions
	}
	return m.optionsWithTags(append(m.tags, extra...)) // m.tags is clipped: append copies
}

// cachedErrorTTL reports whether the method caches errors with code, and
// for how long.
func (m *method) cachedErrorTTL(code codes.Code) (time.Duration, bool) {
	ttl, ok := m.errorTTL[code]
	return ttl, ok
}
