package sqlite

import (
	"context"
	"errors"
	"time"
)

// Bounds of one sweep step: one transaction of the writer deletes at most sweepRows log rows and
// removes at most sweepConvs conversations, so appends never wait long behind the sweep.
const (
	sweepRows  = 1000
	sweepConvs = 100
)

// removeConv removes an expired conversation and everything it owns but its log, which joins
// purge. A conversation has few cursors, addressed marks, timers, values and files: they go at
// once (deleting a file frees its pages, it does not write them).
var removeConv = append(ownedRows(),
	`DELETE FROM conversations WHERE id = ?`,
	`INSERT INTO purge (conv_id) VALUES (?) ON CONFLICT DO NOTHING`,
)

// ownedRows are the statements that remove what a conversation owns in every table but the
// log and the conversations table (each takes the conversation's id).
func ownedRows() []string {
	return []string{
		`DELETE FROM cursors WHERE conv_id = ?`,
		`DELETE FROM addressed WHERE conv_id = ?`,
		`DELETE FROM timers WHERE conv_id = ?`,
		`DELETE FROM vals WHERE conv_id = ?`,
		`DELETE FROM blobs WHERE conv_id = ?`,
		`DELETE FROM legs WHERE conv_id = ?`,
	}
}

// sweeper runs the TTL sweep every SweepEvery until Close.
func (s *Store) sweeper() {
	defer close(s.sweeperDone)
	t := time.NewTicker(s.opts.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.cache.trimTails(time.Now())
			n, err := s.sweep(context.Background())
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil {
				s.log.Error().Err(err).Int("removed", n).Msg("ttl sweep failed")
			} else if n > 0 {
				s.log.Debug().Int("removed", n).Msg("ttl sweep")
			}
		}
	}
}

// sweep removes every conversation not written for longer than the TTL, with everything it owns
// (removeConv, and its log), in bounded steps that go through the writer like any other write. It returns how many
// conversations it removed and stops early when the store closes.
func (s *Store) sweep(ctx context.Context) (int, error) {
	cutoff := s.opts.Clock().Add(-s.opts.TTL - s.touchEvery).UnixNano()
	removed := 0
	for {
		select {
		case <-s.quit:
			return removed, nil
		default:
		}
		r := &request{kind: kindSweep, cutoff: cutoff}
		if err := s.submit(ctx, r); err != nil {
			return removed, err
		}
		removed += len(r.removed)
		s.stats.swept.Add(uint64(len(r.removed)))
		for _, id := range r.removed {
			s.log.Debug().Str("conv_id", id).Msg("conversation expired")
		}
		if !r.more {
			return removed, nil
		}
	}
}

// applySweep is one sweep step inside a writer transaction. It first deletes log rows of
// conversations already removed (listed in purge), then removes expired conversations: their
// rows go at once (removeConv), their log joins purge for later steps. The expiry is checked
// inside the transaction, so a conversation written meanwhile is kept.
func (s *Store) applySweep(b *batchState, r *request) error {
	r.removed, r.more = r.removed[:0], false
	budget := int64(sweepRows)
	rows, err := b.tx.QueryContext(b.ctx, `SELECT conv_id FROM purge LIMIT ?`, sweepConvs)
	if err != nil {
		return err
	}
	var purging []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		purging = append(purging, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range purging {
		if budget == 0 {
			r.more = true
			return nil
		}
		asked := budget
		res, err := b.tx.ExecContext(b.ctx, `DELETE FROM log WHERE conv_id = ?1 AND seq IN
			(SELECT seq FROM log WHERE conv_id = ?1 ORDER BY seq LIMIT ?2)`, id, asked)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		budget -= n
		if n < asked { // fewer rows than asked for: this log is gone
			if _, err := b.tx.ExecContext(b.ctx, `DELETE FROM purge WHERE conv_id = ?`, id); err != nil {
				return err
			}
		}
	}
	if budget == 0 || len(purging) == sweepConvs {
		r.more = true
		return nil
	}

	rows, err = b.tx.QueryContext(b.ctx, `SELECT id FROM conversations WHERE updated < ? ORDER BY updated LIMIT ?`,
		r.cutoff, sweepConvs)
	if err != nil {
		return err
	}
	var expired []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		expired = append(expired, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range expired {
		for _, q := range removeConv {
			if _, err := b.tx.ExecContext(b.ctx, q, id); err != nil {
				return err
			}
		}
		delete(b.meta, id)
		delete(b.known, id) // the transaction may still fail: then known is dropped whole
		r.removed = append(r.removed, id)
	}
	// Removed conversations still have logs to purge.
	r.more = len(expired) > 0
	return nil
}
