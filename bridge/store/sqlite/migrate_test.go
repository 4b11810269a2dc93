package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// schemaV1 is the schema of version 1, as a file written by an older bfbridge holds it.
var schemaV1 = []string{
	`CREATE TABLE conversations (id TEXT PRIMARY KEY, body BLOB NOT NULL, updated INTEGER NOT NULL)`,
	`CREATE INDEX conversations_updated ON conversations (updated)`,
	`CREATE TABLE legs (channel TEXT NOT NULL, channel_conv_id TEXT NOT NULL, conv_id TEXT NOT NULL,
		PRIMARY KEY (channel, channel_conv_id)) WITHOUT ROWID`,
	`CREATE INDEX legs_conv ON legs (conv_id)`,
	`CREATE TABLE log (rowid INTEGER PRIMARY KEY, conv_id TEXT NOT NULL, seq INTEGER NOT NULL,
		from_role TEXT NOT NULL, activity BLOB NOT NULL, at INTEGER NOT NULL, idem_key TEXT)`,
	`CREATE UNIQUE INDEX log_seq ON log (conv_id, seq)`,
	`CREATE UNIQUE INDEX log_idem ON log (conv_id, idem_key) WHERE idem_key IS NOT NULL`,
	`CREATE TABLE cursors (conv_id TEXT NOT NULL, leg TEXT NOT NULL, seq INTEGER NOT NULL,
		PRIMARY KEY (conv_id, leg)) WITHOUT ROWID`,
	`CREATE TABLE purge (conv_id TEXT PRIMARY KEY) WITHOUT ROWID`,
	`CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID`,
	`INSERT INTO conversations VALUES ('m1', '{"id":"m1","state":"agent","customer":{"channel":"directline","conversationId":"m1","user":{"id":"u1"},"bot":{"id":""}},"bot":{"channel":"botframework","conversationId":"m1-bot","user":{"id":""},"bot":{"id":""}},"created":"2025-01-01T00:00:00Z","updated":"2025-01-01T00:00:00Z"}', 9e18)`,
	`INSERT INTO legs VALUES ('directline', 'm1', 'm1'), ('botframework', 'm1-bot', 'm1')`,
	`INSERT INTO log (conv_id, seq, from_role, activity, at, idem_key) VALUES
		('m1', 0, 'customer', '{"id":"m1|0000000","type":"message","text":"a"}', 1, 'k0'),
		('m1', 1, 'bot', '{"id":"m1|0000001","type":"message","text":"b"}', 2, NULL)`,
	`INSERT INTO cursors VALUES ('m1', 'botframework/m1-bot', 0)`,
	`INSERT INTO kv VALUES ('desk/routing', '{"agents":["nina"]}', 1)`,
	`PRAGMA user_version = 1`,
}

// TestMigrateFromVersion1 opens a file of schema version 1: what it holds reads as before and
// takes the new contract's writes.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, FileName), nil))
	require.NoError(t, err)
	for _, q := range schemaV1 {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, db.Close())

	s := open(t, Options{Dir: dir})
	var version int
	require.NoError(t, s.wdb.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version))
	require.Equal(t, schemaVersion, version)

	c, err := s.ConversationByLeg(ctx, "botframework", "m1-bot")
	require.NoError(t, err)
	require.Equal(t, bridge.StateAgent, c.State)
	require.Equal(t, int64(1), c.Version, "existing conversations are at version 1")
	c.State = bridge.StateEnded
	require.NoError(t, s.PutConversation(ctx, c))
	require.Equal(t, int64(2), c.Version)

	recs, err := s.Since(ctx, "m1", -1, 0)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "b", recs[1].Activity.Text)
	require.Empty(t, recs[1].To, "older records are addressed to no one")
	seq, dup, err := add(s, "m1", bridge.RoleCustomer, msg("again"), "k0")
	require.NoError(t, err)
	require.True(t, dup)
	require.Equal(t, int64(0), seq)
	seq, _, err = add(s, "m1", bridge.RoleCustomer, msg("c"), "", "botframework/m1-bot")
	require.NoError(t, err)
	require.Equal(t, int64(2), seq)
	require.Equal(t, []bridge.PendingLeg{{ConversationID: "m1", Leg: "botframework/m1-bot", Cursor: 0, Last: 2}}, mustPending(t, s))

	v, err := s.Value(ctx, "", "desk/routing")
	require.NoError(t, err)
	require.JSONEq(t, `{"agents":["nina"]}`, string(v), "version 1's values are the bridge's own")
	var kv int
	require.NoError(t, s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'kv'`).Scan(&kv))
	require.Zero(t, kv, "the old values table is gone")
}
