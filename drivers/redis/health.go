package redis

import "context"

// Ping checks that the bus can publish: it sends a probe message, which
// subscribers ignore, under the bus's timeout.
func (b *Bus) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.client.Publish(ctx, b.channel, probeMessage).Err()
}

// Ping checks that the coordinator's server answers, under its timeout.
func (c *Coordinator) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	return c.client.Ping(ctx).Err()
}
