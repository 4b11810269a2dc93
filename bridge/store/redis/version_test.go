package redis

import (
	"context"
	"errors"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redis6 answers PEXPIRE with NX as a Redis before 7.0 does (the option did not exist: "ERR
// wrong number of arguments for 'pexpire' command"); every other command goes to the server.
type redis6 struct{}

func (redis6) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (redis6) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
func (redis6) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		args := cmd.Args()
		if strings.EqualFold(cmd.Name(), "pexpire") && len(args) > 3 {
			err := errors.New("ERR wrong number of arguments for 'pexpire' command")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// TestOpenRefusesRedisBefore7: the scripts use PEXPIRE … NX, so an older server is refused at
// start, in words that name the version, instead of failing every write.
func TestOpenRefusesRedisBefore7(t *testing.T) {
	rdb := server(t)
	rdb.AddHook(redis6{})
	_, err := Open(context.Background(), Options{Client: rdb, Prefix: "v6:"})
	require.ErrorContains(t, err, "Redis 7.0 or later is needed")

	open(t, server(t), "v7:") // this machine's redis-server (Debian's is 7.0) is taken
}
