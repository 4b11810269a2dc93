package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// schemaVersion is stored in PRAGMA user_version. Open brings an older file up to it (see
// migrations) and refuses a file written by a newer schema.
//
// Version 2 (the outbox): conversations.version for compare-and-swap puts, log.to_legs for the
// legs a record is addressed to, and the tables addressed, timers, vals (per-conversation values,
// replacing version 1's bridge-wide kv) and blobs.
//
// Version 3 (tracing): log.trace, the W3C trace context of the request that appended the record
// (bridge.Entry.Trace), kept beside the activity so that it is never sent as its content.
const schemaVersion = 3

// createVals is the values table, shared by the schema and the migration from version 1.
const createVals = `CREATE TABLE IF NOT EXISTS vals (
		conv_id TEXT NOT NULL,
		key     TEXT NOT NULL,
		value   BLOB NOT NULL,
		updated INTEGER NOT NULL,
		PRIMARY KEY (conv_id, key)
	) WITHOUT ROWID`

// schema creates the tables. Times are Unix nanoseconds from Options.Clock. There are no foreign
// keys: the sweep deletes a conversation's rows itself, in bounded steps, and a conversation's
// log outlives its row only in purge, until the sweep has removed it. Every table but purge is
// keyed by conversation first, and the sweep removes a conversation's rows from each.
var schema = []string{
	// conversations: the JSON of bridge.Conversation; version is the stored version (the column
	// is authoritative over the JSON's); updated is the store's time of the last create, put or
	// append, which the TTL is measured from.
	`CREATE TABLE IF NOT EXISTS conversations (
		id      TEXT PRIMARY KEY,
		body    BLOB NOT NULL,
		updated INTEGER NOT NULL,
		version INTEGER NOT NULL DEFAULT 1
	)`,
	`CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated)`,
	// legs: every leg a conversation has had, by channel and the channel's conversation id.
	`CREATE TABLE IF NOT EXISTS legs (
		channel         TEXT NOT NULL,
		channel_conv_id TEXT NOT NULL,
		conv_id         TEXT NOT NULL,
		PRIMARY KEY (channel, channel_conv_id)
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS legs_conv ON legs (conv_id)`,
	// log: seq is gapless from 0 per conversation; activity is its JSON with the id set; to_legs
	// is the JSON array of the leg keys the record is addressed to (NULL: none); trace is its
	// bridge.Entry.Trace (NULL: none). Rows are in
	// append order (rowid), so a transaction of appends to many conversations writes few data
	// pages; the (conv_id, seq) index serves reads. (Clustering rows by conversation, WITHOUT
	// ROWID, made BenchmarkAppend a third slower for 1,000 conversations.)
	`CREATE TABLE IF NOT EXISTS log (
		rowid     INTEGER PRIMARY KEY,
		conv_id   TEXT NOT NULL,
		seq       INTEGER NOT NULL,
		from_role TEXT NOT NULL,
		activity  BLOB NOT NULL,
		at        INTEGER NOT NULL,
		idem_key  TEXT,
		to_legs   BLOB,
		trace     TEXT
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS log_seq ON log (conv_id, seq)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS log_idem ON log (conv_id, idem_key) WHERE idem_key IS NOT NULL`,
	// cursors: per leg, the highest acknowledged seq; it never moves back.
	`CREATE TABLE IF NOT EXISTS cursors (
		conv_id TEXT NOT NULL,
		leg     TEXT NOT NULL,
		seq     INTEGER NOT NULL,
		PRIMARY KEY (conv_id, leg)
	) WITHOUT ROWID`,
	// addressed: per leg, the highest seq addressed to it; a leg is pending while it is past
	// the leg's cursor.
	`CREATE TABLE IF NOT EXISTS addressed (
		conv_id TEXT NOT NULL,
		leg     TEXT NOT NULL,
		seq     INTEGER NOT NULL,
		PRIMARY KEY (conv_id, leg)
	) WITHOUT ROWID`,
	// timers: a conversation's named deadlines; timers_due serves DueTimers.
	`CREATE TABLE IF NOT EXISTS timers (
		conv_id TEXT NOT NULL,
		name    TEXT NOT NULL,
		due     INTEGER NOT NULL,
		PRIMARY KEY (conv_id, name)
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS timers_due ON timers (due)`,
	// vals: small named values of a conversation, or of the bridge (conv_id ''), which the sweep
	// never removes; vals_key serves Values.
	createVals,
	`CREATE INDEX IF NOT EXISTS vals_key ON vals (key)`,
	// blobs: a conversation's files. Kept apart from the rest (a rowid table), since they are
	// large.
	`CREATE TABLE IF NOT EXISTS blobs (
		rowid        INTEGER PRIMARY KEY,
		conv_id      TEXT NOT NULL,
		id           TEXT NOT NULL,
		content_type TEXT NOT NULL,
		data         BLOB NOT NULL
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS blobs_id ON blobs (conv_id, id)`,
	// purge: conversations already removed whose log rows the sweep is still deleting.
	`CREATE TABLE IF NOT EXISTS purge (conv_id TEXT PRIMARY KEY) WITHOUT ROWID`,
}

// migrations[v] brings a file from schema version v to v+1. They run before schema, which
// then creates what is new and missing.
var migrations = map[int][]string{
	1: {
		`ALTER TABLE conversations ADD COLUMN version INTEGER NOT NULL DEFAULT 1`,
		`ALTER TABLE log ADD COLUMN to_legs BLOB`,
		// Version 1's values were all the bridge's own: they become bridge-wide values.
		createVals,
		`INSERT INTO vals (conv_id, key, value, updated) SELECT '', key, value, updated FROM kv`,
		`DROP TABLE kv`,
	},
	2: {`ALTER TABLE log ADD COLUMN trace TEXT`},
}

// setUp checks the journal mode, creates, migrates or checks the schema and prepares the
// writer's statements.
func (s *Store) setUp(ctx context.Context, path string) error {
	var mode string
	if err := s.wdb.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("sqlite store: open %s: journal mode is %q, not wal", path, mode)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: schema: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	from, err := migrate(ctx, tx)
	if err != nil {
		return fmt.Errorf("sqlite store: %s: %w", path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: schema: %w", err)
	}
	if from != 0 && from != schemaVersion {
		s.log.Info().Int("from", from).Int("to", schemaVersion).Str("path", path).Msg("schema migrated")
	}
	// Deleted content is overwritten, not left in free space: an erased conversation
	// (EraseConversation) leaves no bytes behind, nor do the copies page rewrites free.
	if _, err := s.wdb.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("sqlite store: secure_delete: %w", err)
	}
	return s.w.prepare(ctx, s.wdb)
}

// migrate brings the schema up to date inside tx and returns the version it found (0 for a new
// file).
func migrate(ctx context.Context, tx *sql.Tx) (int, error) {
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("schema: %w", err)
	}
	if version > schemaVersion {
		return version, fmt.Errorf("schema version %d is newer than this program's %d: use a newer bfbridge", version, schemaVersion)
	}
	if version > 0 {
		for v := version; v < schemaVersion; v++ {
			for _, q := range migrations[v] {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return version, fmt.Errorf("schema: migrate from version %d: %w", v, err)
				}
			}
		}
	}
	for _, q := range schema {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return version, fmt.Errorf("schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return version, fmt.Errorf("schema: %w", err)
	}
	return version, nil
}
