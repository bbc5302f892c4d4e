package layercacheotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// config is what the options of [New] set.
type config struct {
	// tp makes the tracer. Default: otel.GetTracerProvider().
	tp trace.TracerProvider
	// mp makes the meter. Default: otel.GetMeterProvider().
	mp metric.MeterProvider
	// keys puts keys and tags on spans. Default: false.
	keys bool
	// attrs go on every span and measurement. Default: none.
	attrs []attribute.KeyValue
}

// Option configures an [Observer] made by [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithTracerProvider sets the provider the observer's tracer comes from.
// Default: the global provider, otel.GetTracerProvider(). A nil provider
// leaves the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	})
}

// WithMeterProvider sets the provider the observer's meter comes from.
// Default: the global provider, otel.GetMeterProvider(). A nil provider
// leaves the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	})
}

// WithKeys puts cache keys on spans: cache.key for Get, Lookup, Set and
// loads, cache.keys for Delete and cache.tags for InvalidateTags. Off by
// default, because keys often carry user identifiers or other personal
// data. Keys never go on metrics, whose attributes must stay few.
func WithKeys() Option {
	return optionFunc(func(c *config) { c.keys = true })
}

// WithAttributes adds attrs to every span and every measurement, for
// instance attribute.String("cache.name", "users") to tell several caches
// of one process apart. Attributes given in several calls add up.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return optionFunc(func(c *config) { c.attrs = append(c.attrs, attrs...) })
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c
}
