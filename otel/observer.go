package layercacheotel

import (
	"context"
	"errors"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/layercache/layercache"
)

// ScopeName is the instrumentation scope of the observer's tracer and meter.
const ScopeName = "github.com/layercache/layercache/otel"

// The attribute keys the observer sets. Keys are domain first, as in the
// OpenTelemetry semantic conventions; error.type is the conventions' own.
const (
	keyOperation = attribute.Key("cache.operation")
	keyResult    = attribute.Key("cache.result")
	keyHit       = attribute.Key("cache.hit")
	keyLayer     = attribute.Key("cache.layer")
	keyKey       = attribute.Key("cache.key")
	keyKeys      = attribute.Key("cache.keys")
	keyTags      = attribute.Key("cache.tags")
	keyDirection = attribute.Key("cache.bus.direction")
	keyDuration  = attribute.Key("cache.duration")
	keyErrorType = attribute.Key("error.type")
	keyErrorMsg  = attribute.Key("error.message")
)

// Observer is a [layercache.Observer] that records spans and metrics with
// OpenTelemetry. Make it with [New]; it is safe for concurrent use and may
// observe several caches (tell them apart with [WithAttributes]).
type Observer struct {
	// off: both providers are no-ops, every method returns at once.
	off    bool
	tracer trace.Tracer // nil when the tracer provider is a no-op
	meter  bool         // the instruments below are live
	keys   bool
	extra  []attribute.KeyValue

	// spans holds, per operation kind, the span name and start options,
	// built once so that starting a span allocates nothing here.
	spans [len(opKinds) + 1]spanStart

	requests, loads, errs, bus, dropped metric.Int64Counter
	loadDuration, layerDuration         metric.Float64Histogram
	breaker                             metric.Int64Gauge

	outcomes memo[outcomeKey, outcomeAttrs]
	events   memo[eventKey, eventAttrs]

	// byLayer finds the attributes of an outcome without error by
	// operation and result, then by layer in a list of a few entries: a
	// scan of one to three layer names (usually the same string, compared
	// by pointer) costs a fraction of hashing a key into outcomes.
	byLayer [len(opKinds) + 1][maxResult + 1]atomic.Pointer[[]layerOutcome]
}

// maxResult is the largest [layercache.Result] byLayer has room for; other
// results go through the memo.
const maxResult = layercache.ResultNotFound

// maxLayers bounds a byLayer list; more layers go through the memo.
const maxLayers = 8

type layerOutcome struct {
	layer string
	attrs *outcomeAttrs
}

// opKinds are the operations the observer knows; others (added to the root
// package later) get their span name built per call.
var opKinds = [...]layercache.OpKind{layercache.OpGet, layercache.OpLookup, layercache.OpSet,
	layercache.OpDelete, layercache.OpInvalidateTags, layercache.OpClear, layercache.OpLoad}

type spanStart struct {
	name string
	opts []trace.SpanStartOption
}

// New returns an observer that records to the configured providers (by
// default the global ones). Its instruments are created here, once; an
// error means the meter provider refused one of them.
func New(opts ...Option) (*Observer, error) {
	cfg := newConfig(opts)
	o := &Observer{keys: cfg.keys, extra: cfg.attrs}
	o.outcomes.build = o.buildOutcome
	o.events.build = o.buildEvent

	if !isNoopTracerProvider(cfg.tp) {
		o.tracer = cfg.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(version()))
		for _, k := range opKinds {
			o.spans[k] = o.newSpanStart(k)
		}
	}
	if !isNoopMeterProvider(cfg.mp) {
		if err := o.newInstruments(cfg.mp); err != nil {
			return nil, err
		}
		o.meter = true
	}
	o.off = o.tracer == nil && !o.meter
	return o, nil
}

// isNoopTracerProvider and isNoopMeterProvider recognise the no-op
// providers, so that an observer on them does nothing rather than ask
// them to do nothing (a no-op Start still puts a span in a new context).
func isNoopTracerProvider(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return true
	}
	return false
}

func isNoopMeterProvider(mp metric.MeterProvider) bool {
	switch mp.(type) {
	case metricnoop.MeterProvider, *metricnoop.MeterProvider:
		return true
	}
	return false
}

func (o *Observer) newSpanStart(k layercache.OpKind) spanStart {
	attrs := append([]attribute.KeyValue{keyOperation.String(k.String())}, o.extra...)
	return spanStart{
		name: "layercache." + k.String(),
		opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...)},
	}
}

// Bucket boundaries in seconds. A remote layer answers in tens of
// microseconds to milliseconds (its timeout is 100ms by default); a
// loader, a database or service call, in milliseconds to seconds.
var (
	layerBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	loadBuckets  = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

func (o *Observer) newInstruments(mp metric.MeterProvider) error {
	m := mp.Meter(ScopeName, metric.WithInstrumentationVersion(version()))
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string, bounds []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return h
	}
	o.requests = counter("cache.requests", "{request}", "Cache operations, by operation, result and the layer that answered.")
	o.loads = counter("cache.loads", "{load}", "Loader calls, by result.")
	o.errs = counter("cache.errors", "{error}", "Failed operations on cache layers, by layer and operation.")
	o.bus = counter("cache.bus.messages", "{message}", "Invalidation messages sent to (out) and received from (in) other instances.")
	o.dropped = counter("cache.writeback.dropped", "{write}", "Background writes dropped because the write-back queue was full.")
	o.loadDuration = histogram("cache.load.duration", "Duration of loader calls.", loadBuckets)
	o.layerDuration = histogram("cache.layer.duration", "Duration of operations on layers outside the process.", layerBuckets)
	var err error
	o.breaker, err = m.Int64Gauge("cache.breaker.state", metric.WithUnit("1"),
		metric.WithDescription("State of a layer's circuit breaker: 0 closed, 1 open."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return errors.Join(errors.New("layercache/otel: cannot create instruments"), err)
	}
	return nil
}

// version is this module's version as the build knows it, for the
// instrumentation scope; empty in a development build.
var version = sync.OnceValue(func() string {
	const module = "github.com/layercache/layercache"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := ""
	if bi.Main.Path == module {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == module {
			v = d.Version
		}
	}
	if v == "(devel)" {
		return ""
	}
	return v
})

// Enabled reports whether the observer records anything: it is false when
// both providers given to [New] are no-ops, and every method then returns
// at once. A program may leave such an observer out of the cache's options
// altogether, which also spares the cache the calls.
func (o *Observer) Enabled() bool { return !o.off }

// loadContext is the context of a load: it carries the load's start for
// cache.load.duration in one allocation, where context.WithValue would
// take a second one to box the time.
type loadContext struct {
	context.Context
	start time.Time
}

// Begin starts the operation's span, a child of any span in ctx.
func (o *Observer) Begin(ctx context.Context, op layercache.Operation) context.Context {
	if o.off {
		return ctx
	}
	if o.tracer != nil {
		s := o.spanStart(op.Kind)
		var span trace.Span
		ctx, span = o.tracer.Start(ctx, s.name, s.opts...)
		if o.keys && span.IsRecording() {
			setKeys(span, op)
		}
	}
	if op.Kind == layercache.OpLoad && o.meter {
		return &loadContext{Context: ctx, start: time.Now()}
	}
	return ctx
}

func (o *Observer) spanStart(k layercache.OpKind) spanStart {
	if int(k) < len(o.spans) && o.spans[k].name != "" {
		return o.spans[k]
	}
	return o.newSpanStart(k)
}

func setKeys(span trace.Span, op layercache.Operation) {
	switch {
	case op.Key != "":
		span.SetAttributes(keyKey.String(op.Key))
	case len(op.Keys) > 0:
		span.SetAttributes(keyKeys.StringSlice(op.Keys))
	case len(op.Tags) > 0:
		span.SetAttributes(keyTags.StringSlice(op.Tags))
	}
}

// Finish ends the operation's span and counts the operation.
func (o *Observer) Finish(ctx context.Context, op layercache.Operation, out layercache.Outcome) {
	if o.off {
		return
	}
	a := o.outcome(op.Kind, out)
	if o.tracer != nil {
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			span.SetAttributes(a.span...)
			if out.Err != nil {
				span.RecordError(out.Err)
				span.SetStatus(codes.Error, out.Err.Error())
			}
		}
		span.End()
	}
	if !o.meter {
		return
	}
	if op.Kind != layercache.OpLoad {
		o.requests.Add(ctx, 1, a.add...)
		return
	}
	o.loads.Add(ctx, 1, a.add...)
	if lc, ok := ctx.(*loadContext); ok {
		o.loadDuration.Record(ctx, time.Since(lc.start).Seconds(), a.record...)
	}
}

// Event adds e to the span in ctx, if one is recording, and counts it.
func (o *Observer) Event(ctx context.Context, e layercache.Event) {
	if o.off {
		return
	}
	var span trace.Span
	if o.tracer != nil {
		if s := trace.SpanFromContext(ctx); s.IsRecording() {
			span = s
		}
	}
	if span == nil && !o.meter {
		return
	}
	k := eventKey{kind: e.Kind, layer: e.Layer, op: e.Op}
	if e.Err != nil {
		k.errType = errorType(e.Err)
	}
	a := o.events.get(k)
	if span != nil {
		if e.Kind == layercache.EventLayerOp || e.Err != nil {
			// The duration and message vary per call.
			attrs := make([]attribute.KeyValue, len(a.span), len(a.span)+2)
			copy(attrs, a.span)
			if e.Kind == layercache.EventLayerOp {
				attrs = append(attrs, keyDuration.Float64(e.Duration.Seconds()))
			}
			if e.Err != nil {
				attrs = append(attrs, keyErrorMsg.String(e.Err.Error()))
			}
			span.AddEvent(a.name, trace.WithAttributes(attrs...))
		} else {
			span.AddEvent(a.name, a.spanOpts...)
		}
	}
	if !o.meter {
		return
	}
	switch e.Kind {
	case layercache.EventLayerOp:
		o.layerDuration.Record(ctx, e.Duration.Seconds(), a.record...)
		if e.Err != nil {
			o.errs.Add(ctx, 1, a.add...)
		}
	case layercache.EventBreakerOpen:
		o.breaker.Record(ctx, 1, a.record...)
	case layercache.EventBreakerClose:
		o.breaker.Record(ctx, 0, a.record...)
	case layercache.EventBusIn, layercache.EventBusOut:
		o.bus.Add(ctx, 1, a.add...)
	case layercache.EventWriteBackDropped:
		o.dropped.Add(ctx, 1, a.add...)
	}
}

// outcome returns the attributes of an operation's end.
func (o *Observer) outcome(kind layercache.OpKind, out layercache.Outcome) *outcomeAttrs {
	if out.Err != nil || int(kind) >= len(o.byLayer) || out.Result > maxResult {
		k := outcomeKey{op: kind, result: out.Result, layer: out.Layer}
		if out.Err != nil {
			k.errType = errorType(out.Err)
		}
		return o.outcomes.get(k)
	}
	slot := &o.byLayer[kind][out.Result]
	if list := slot.Load(); list != nil {
		for i := range *list {
			if (*list)[i].layer == out.Layer {
				return (*list)[i].attrs
			}
		}
	}
	a := o.outcomes.get(outcomeKey{op: kind, result: out.Result, layer: out.Layer})
	for {
		old := slot.Load()
		var next []layerOutcome
		if old != nil {
			if len(*old) >= maxLayers || slices.ContainsFunc(*old, func(l layerOutcome) bool { return l.layer == out.Layer }) {
				return a
			}
			next = slices.Clone(*old)
		}
		next = append(next, layerOutcome{out.Layer, a})
		if slot.CompareAndSwap(old, &next) {
			return a
		}
	}
}

// outcomeKey is what the attributes of a finished operation depend on.
type outcomeKey struct {
	op      layercache.OpKind
	result  layercache.Result
	layer   string
	errType string
}

type outcomeAttrs struct {
	span   []attribute.KeyValue  // added to the span at Finish
	add    []metric.AddOption    // the measurement's attribute set, as options
	record []metric.RecordOption // the same, for histograms
}

func (o *Observer) buildOutcome(k outcomeKey) *outcomeAttrs {
	read := k.op == layercache.OpGet || k.op == layercache.OpLookup
	var span, set []attribute.KeyValue
	if k.op != layercache.OpLoad {
		set = append(set, keyOperation.String(k.op.String()))
	}
	if read || k.op == layercache.OpLoad || k.result != layercache.ResultNone {
		r := keyResult.String(k.result.String())
		span, set = append(span, r), append(set, r)
	}
	if read {
		span = append(span, keyHit.Bool(k.layer != ""))
	}
	if k.layer != "" {
		l := keyLayer.String(k.layer)
		span, set = append(span, l), append(set, l)
	}
	if k.errType != "" {
		t := keyErrorType.String(k.errType)
		span, set = append(span, t), append(set, t)
	}
	s := o.measurementSet(set)
	return &outcomeAttrs{span: span, add: []metric.AddOption{s}, record: []metric.RecordOption{s}}
}

func (o *Observer) measurementSet(attrs []attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(append(attrs, o.extra...)...))
}

// eventKey is what the attributes of an event depend on.
type eventKey struct {
	kind    layercache.EventKind
	layer   string
	op      string
	errType string
}

type eventAttrs struct {
	name     string               // span event name
	span     []attribute.KeyValue // span event attributes
	spanOpts []trace.EventOption  // the same, as an option
	add      []metric.AddOption
	record   []metric.RecordOption
}

func (o *Observer) buildEvent(k eventKey) *eventAttrs {
	var span, set []attribute.KeyValue
	if k.layer != "" {
		l := keyLayer.String(k.layer)
		span, set = append(span, l), append(set, l)
	}
	if k.op != "" {
		op := keyOperation.String(k.op)
		span = append(span, op)
		if k.kind != layercache.EventBreakerOpen && k.kind != layercache.EventBreakerClose {
			set = append(set, op)
		}
	}
	switch k.kind {
	case layercache.EventBusIn:
		set = append(set, keyDirection.String("in"))
	case layercache.EventBusOut:
		set = append(set, keyDirection.String("out"))
	}
	if k.errType != "" {
		t := keyErrorType.String(k.errType)
		span, set = append(span, t), append(set, t)
	}
	s := o.measurementSet(set)
	return &eventAttrs{
		name:     "layercache." + k.kind.String(),
		span:     span,
		spanOpts: []trace.EventOption{trace.WithAttributes(span...)},
		add:      []metric.AddOption{s},
		record:   []metric.RecordOption{s},
	}
}

var _ layercache.Observer = (*Observer)(nil)
