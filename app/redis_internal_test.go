package app

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestRedisClientProtocol: the Redis client speaks RESP2 unless redis.url names a protocol.
func TestRedisClientProtocol(t *testing.T) {
	for url, want := range map[string]int{
		"redis://127.0.0.1:1/0":            2,
		"redis://127.0.0.1:1/0?protocol=3": 3,
	} {
		rdb, err := Redis{URL: url}.client()
		require.NoError(t, err)
		require.Equal(t, want, rdb.(*goredis.Client).Options().Protocol, url)
		require.NoError(t, rdb.Close())
	}
	rdb, err := Redis{URL: "redis://127.0.0.1:1", Cluster: []string{"127.0.0.1:1"}}.client()
	require.NoError(t, err)
	require.Equal(t, 2, rdb.(*goredis.ClusterClient).Options().Protocol)
	require.NoError(t, rdb.Close())
}
