package sqlite

import (
	"context"

	"github.com/bfbridge/bfbridge/bridge"
)

// listSQL pages through the conversations by id (LIMIT -1: all).
const listSQL = `SELECT body, version FROM conversations WHERE id > ? ORDER BY id LIMIT ?`

// eraseSQL removes a conversation's rows from every table, its log at once (unlike the sweep's
// removeConv, which leaves the log to purge in bounded steps).
var eraseSQL = append(ownedRows(),
	`DELETE FROM log WHERE conv_id = ?`,
	`DELETE FROM purge WHERE conv_id = ?`,
	`DELETE FROM conversations WHERE id = ?`,
)

// Conversations implements bridge.Store.
func (s *Store) Conversations(ctx context.Context, after string, limit int) ([]*bridge.Conversation, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.rdb.QueryContext(ctx, listSQL, after, limit)
	if err != nil {
		return nil, s.readErr("list conversations", err)
	}
	defer rows.Close()
	var out []*bridge.Conversation
	for rows.Next() {
		var (
			body    []byte
			version int64
		)
		if err := rows.Scan(&body, &version); err != nil {
			return nil, s.readErr("list conversations", err)
		}
		c, err := decodeConv(body, version)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("list conversations", err)
	}
	return out, nil
}

// EraseConversation implements bridge.Store: one transaction of the writer removes every row of
// the conversation, its log included, and the cache forgets it once committed.
func (s *Store) EraseConversation(ctx context.Context, id string) error {
	return s.submit(ctx, &request{kind: kindErase, conv: id})
}

// applyErase removes a conversation and everything it owns. The writer's connection has
// secure_delete on (setUp), so the freed content is overwritten with zeros rather than left in
// free pages; the WAL's older frames hold it until the next checkpoint.
func (s *Store) applyErase(b *batchState, r *request) error {
	if ok, err := b.exists(s, r); !ok {
		return err
	}
	for _, q := range eraseSQL {
		if _, err := b.tx.ExecContext(b.ctx, q, r.conv); err != nil {
			return err
		}
	}
	delete(b.meta, r.conv)
	delete(b.known, r.conv) // the transaction may still fail: then known is dropped whole
	return nil
}
