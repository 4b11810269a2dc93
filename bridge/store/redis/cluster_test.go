package redis

import (
	"strconv"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/storetest"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

// The store on a Redis Cluster of three primaries passes the same contract: a conversation's
// keys share one hash slot (its Lua scripts touch no other), and the bridge-wide keys are
// touched one command at a time.
func TestContractOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node Redis Cluster")
	}
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: testutil.RedisCluster(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) bridge.Store {
		return open(t, rdb, "cl"+strconv.FormatInt(n.Add(1), 10)+":")
	}, storetest.WithReopen(func(t *testing.T, s bridge.Store) bridge.Store {
		prefix := s.(*Store).prefix
		require.NoError(t, s.Close())
		return open(t, rdb, prefix)
	}))
}
