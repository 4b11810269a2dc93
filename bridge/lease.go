package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/bfbridge/bfbridge/internal/ctxutil"
)

// Leaser is an optional capability of a Store that several bridge processes share (Redis):
// leases with fencing tokens, so that each (conversation, leg) outbox pump and each due timer
// is run by one process at a time, and a process that lost its lease (it stalled, or was cut
// off, longer than the lease) cannot move a cursor behind the new owner's back. A Hub uses it
// when its store provides it; a store of one process (memory, SQLite) does not, and needs none.
// storetest.RunLeaser checks the contract with two stores on the same data.
//
// A lease is named within a conversation (OutboxLease, TimerLease). Its fencing token is
// greater than every token issued for the same lease before, while the conversation is kept.
type Leaser interface {
	// Acquire takes the lease name of conversation convID for ttl when no one holds it (its
	// holder released it, or did not renew it in time), and returns its new fencing token;
	// ok is false when another holds it.
	Acquire(ctx context.Context, convID, name string, ttl time.Duration) (token int64, ok bool, err error)
	// Renew extends the lease for ttl from now when token still holds it, and reports whether
	// it does.
	Renew(ctx context.Context, convID, name string, token int64, ttl time.Duration) (bool, error)
	// Release frees the lease when token still holds it; otherwise it does nothing.
	Release(ctx context.Context, convID, name string, token int64) error
	// AckFenced is Store.Ack, made only when token is the newest fencing token of the leg's
	// outbox lease (OutboxLease(leg)): a token superseded by another owner's fails with
	// ErrFenced and leaves the cursor as it is. (A lease that expired with no new owner keeps
	// its token: acknowledging then is safe, no one else delivered.)
	AckFenced(ctx context.Context, convID, leg string, seq, token int64) error
	// ClaimTimer takes the timer's lease (TimerLease(t.Name)) for ttl when the timer is still
	// set to t.Due and no one holds the lease, atomically: of the processes that read the same
	// due timer, one claims it, and none once its handler moved or removed it. The claimer
	// releases the lease (Release) when it has handled the timer; a claimer that dies leaves the
	// timer due, to be claimed again when its lease runs out.
	ClaimTimer(ctx context.Context, t Timer, ttl time.Duration) (token int64, ok bool, err error)
}

// ErrFenced is what Leaser.AckFenced returns to an owner whose lease another took over.
var ErrFenced = errors.New("lease taken over by another owner")

// OutboxLease is the name of the lease on a leg's outbox pump (leg: Leg.Key).
func OutboxLease(leg string) string { return "out:" + leg }

// TimerLease is the name of the lease on a conversation's timer.
func TimerLease(name string) string { return "timer:" + name }

// Defaults of the lease settings (HubConfig.LeaseTTL, HubConfig.PendingScan).
const (
	DefaultLeaseTTL    = 5 * time.Second
	DefaultPendingScan = 2 * time.Second
)

// leasePoll is how often a pump with callers waiting tries again for a lease another process
// holds (it releases it when it has caught up).
const leasePoll = 50 * time.Millisecond

// leased is one run of a line's pump: its context, and the lease it holds (token 0: the store
// has no leases).
type leased struct {
	ctx    context.Context // ends when the outbox stops, or the lease is lost
	cancel context.CancelFunc
	token  int64
	done   chan struct{} // closed when the renewer has stopped
}

// acquire starts a run of the line k: at once when the store has no leases, otherwise once the
// line's lease is taken. A line with callers waiting tries for up to the delivery timeout;
// another (a resumed or rescanned leg) tries once, since the lease's holder is delivering it.
// It returns nil when the lease stays with another process.
func (o *outbox) acquire(k lineKey) *leased {
	if o.h.leaser == nil {
		return &o.plain
	}
	deadline := time.Now().Add(o.h.cfg.DeliveryTimeout)
	for logged := false; ; {
		tok, ok, err := o.h.leaser.Acquire(o.ctx, k.conv, OutboxLease(k.leg), o.h.cfg.LeaseTTL)
		if err == nil && ok {
			ctx, cancel := context.WithCancel(o.ctx)
			r := &leased{ctx: ctx, cancel: cancel, token: tok, done: make(chan struct{})}
			go o.h.keepLease(ctx, k.conv, OutboxLease(k.leg), tok, cancel, r.done)
			return r
		}
		if err != nil && o.ctx.Err() == nil && !logged { // once per try, not once per poll
			o.h.log.Warn().Err(err).Str("conv_id", k.conv).Str("leg", k.leg).Msg("outbox: lease not taken")
			logged = true
		}
		if !o.waiting(k) || time.Now().After(deadline) || ctxutil.Sleep(o.ctx, leasePoll) != nil {
			return nil
		}
	}
}

// waiting reports whether callers wait for a record of the line.
func (o *outbox) waiting(k lineKey) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lines[k]
	return l != nil && len(l.waiters) > 0
}

// keepLease renews a lease every third of its TTL until ctx ends, and calls lost (then
// returns) when it finds the lease taken over, or could not renew it for as long as it lasts.
// It closes done when it returns.
func (h *Hub) keepLease(ctx context.Context, convID, name string, token int64, lost context.CancelFunc, done chan struct{}) {
	defer close(done)
	ttl := h.cfg.LeaseTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	renewed := time.Now()
	log := h.log.With().Str("conv_id", convID).Str("lease", name).Logger()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := h.leaser.Renew(ctx, convID, name, token, ttl)
		switch {
		case err == nil && ok:
			renewed = time.Now()
			continue
		case err == nil:
			log.Warn().Msg("lease lost to another process")
		case ctx.Err() != nil:
			return
		case time.Since(renewed) < ttl:
			log.Warn().Err(err).Msg("lease not renewed; trying again")
			continue
		default:
			log.Warn().Err(err).Msg("lease not renewed in time; stopping")
		}
		lost()
		return
	}
}

// release ends a run: its renewer stops and its lease is freed for the next owner.
func (o *outbox) release(k lineKey, r *leased) {
	if r == nil || r.token == 0 {
		return
	}
	r.cancel()
	<-r.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := o.h.leaser.Release(ctx, k.conv, OutboxLease(k.leg), r.token); err != nil {
		o.h.log.Warn().Err(err).Str("conv_id", k.conv).Str("leg", k.leg).Msg("outbox: lease not released; it runs out")
	}
}

// ack stores a line's cursor, fenced by the run's lease when it holds one. A fenced ack ends the
// run: another process owns the line now.
func (o *outbox) ack(k lineKey, r *leased, seq int64) {
	var err error
	if r.token != 0 {
		err = o.h.leaser.AckFenced(r.ctx, k.conv, k.leg, seq, r.token)
	} else {
		err = o.h.store.Ack(r.ctx, k.conv, k.leg, seq)
	}
	if errors.Is(err, ErrFenced) {
		o.h.log.Warn().Str("conv_id", k.conv).Str("leg", k.leg).Int64("seq", seq).Msg("outbox: acknowledgement fenced: another process owns the leg; stopping")
		r.cancel()
		return
	}
	if err != nil {
		o.h.log.Warn().Err(err).Str("conv_id", k.conv).Str("leg", k.leg).Msg("outbox: cursor not stored")
	}
}

// SharedValues is an optional capability of a Store that several bridge processes share: the
// bridge's own values (conversation "") created once for all of them, for what every instance
// must agree on (the Direct Line secret, the key that signs the bot's tokens).
type SharedValues interface {
	// InitValue stores value as the bridge's own value under key unless one is stored already,
	// and returns the stored one: of processes racing, every one gets the first's.
	InitValue(ctx context.Context, key string, value []byte) ([]byte, error)
}
