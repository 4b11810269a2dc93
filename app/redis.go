package app

import (
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// validate checks the redis: section for store: redis.
func (r Redis) validate() error {
	if _, err := goredis.ParseURL(r.URL); err != nil {
		return fmt.Errorf("redis.url is required with the redis store, as redis://host:port[/db]: %w", err)
	}
	switch s := r.Sentinel; {
	case len(r.Cluster) > 0 && (s.MasterName != "" || len(s.Addrs) > 0):
		return errors.New("redis: cluster and sentinel exclude each other")
	case s.MasterName != "" && len(s.Addrs) == 0, s.MasterName == "" && len(s.Addrs) > 0:
		return errors.New("redis.sentinel needs both master_name and addrs")
	}
	return nil
}

// client returns the go-redis client the section describes: a Cluster client with cluster
// seeds, a failover (Sentinel) client with a sentinel master, else a single-node client.
// Credentials, TLS and (but for Cluster) the database come from the URL.
func (r Redis) client() (goredis.UniversalClient, error) {
	o, err := goredis.ParseURL(r.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	if !strings.Contains(r.URL, "protocol=") {
		o.Protocol = 2
	}
	switch {
	case len(r.Cluster) > 0:
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: r.Cluster, Username: o.Username,
			Password: o.Password, TLSConfig: o.TLSConfig, Protocol: o.Protocol}), nil
	case r.Sentinel.MasterName != "":
		return goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: r.Sentinel.MasterName,
			SentinelAddrs: r.Sentinel.Addrs, SentinelPassword: r.Sentinel.Password, Username: o.Username,
			Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig, Protocol: o.Protocol}), nil
	}
	if !strings.Contains(r.URL, "pool_size=") {
		o.PoolSize = DefaultRedisPoolSize
	}
	return goredis.NewClient(o), nil
}

// The client speaks RESP2 unless redis.url says otherwise (?protocol=3): with RESP3, go-redis
// peeks at each connection for push notifications before every reply, about 6% of the CPU of an
// exchange in a profile of the Redis store (BENCHMARKS.md, "Performance round two"), and the
// store uses none (its wake-ups have a pub/sub connection of their own).

// DefaultRedisPoolSize is the connections a bridge keeps to one Redis node unless redis.url
// says otherwise (?pool_size=N). An exchange makes a dozen short round trips one after the
// other, and with appendfsync always each write waits for the next fsync: Redis fsyncs once for
// all the writes of one turn of its loop, so concurrent exchanges need connections of their own
// to share those fsyncs, more than go-redis's default of 10 per CPU.
const DefaultRedisPoolSize = 128
