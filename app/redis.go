package app

import (
	"errors"
	"fmt"

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
	switch {
	case len(r.Cluster) > 0:
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: r.Cluster, Username: o.Username,
			Password: o.Password, TLSConfig: o.TLSConfig}), nil
	case r.Sentinel.MasterName != "":
		return goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: r.Sentinel.MasterName,
			SentinelAddrs: r.Sentinel.Addrs, SentinelPassword: r.Sentinel.Password, Username: o.Username,
			Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig}), nil
	}
	return goredis.NewClient(o), nil
}
