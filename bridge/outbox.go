package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/ctxutil"
	"github.com/bfbridge/bfbridge/internal/metrics"
	"github.com/bfbridge/bfbridge/internal/tracing"
)

// LogReader is implemented by channels whose legs read the conversation log themselves (Direct
// Line streams and GET /activities): the outbox delivers nothing to them, and records are not
// addressed to them.
type LogReader interface {
	ReadsLog() bool
}

// The outbox delivers the log to the legs. Each (conversation, leg) with records addressed to it
// past its cursor has a line; a line runs one pump goroutine while it has work, which reads the
// log from the leg's cursor (Store.Since), sends each record addressed to the leg in order
// (Channel.Send), and acknowledges it (Store.Ack); then the goroutine ends. Callers that caused a
// record wait, if they want, for the outcome of its first delivery attempt to each leg; a
// retryable failure is retried with jittered backoff (never after a timeout, when the far side
// may have taken it) for up to HubConfig.RetryFor, then recorded as dead on the conversation
// (Conversation.Dead) and acknowledged, so the line moves on. The line's memory is a cache: the
// cursor and the dead letters are in the store, and Hub.Run resumes every pending line at start
// (Store.Pending). With a store shared by several processes (a Leaser), each run of a line
// holds the line's lease and acknowledges under its fencing token (lease.go; the package doc).
//
// One mutex (outbox.mu) guards the lines; it is never held while calling the store or a channel.
type outbox struct {
	h      *Hub
	ctx    context.Context // the pumps' context: no caller's, so a caller that leaves stops nothing
	cancel context.CancelFunc

	mu    sync.Mutex
	lines map[lineKey]*line
	pumps sync.WaitGroup

	plain leased // the run of every line when the store has no leases: the outbox's context
}

type lineKey struct{ conv, leg string }

type line struct {
	running, kicked bool
	greet           bool                 // greet the bot before anything else (greetAtStart)
	handled         int64                // the highest seq whose first attempt is reported
	failing         error                // while an earlier record is being retried: its failure
	recent          [outcomeRing]outcome // first-attempt outcomes reported in this run, for late waiters
	waiters         map[int64][]chan error
}

type outcome struct {
	seq int64
	err error
	set bool
}

// outcomeRing is how many first-attempt outcomes a line remembers for waiters that register
// after the pump reported (a waiter registers right after its append, so a few suffice).
const outcomeRing = 8

// wait is one caller's wait for the first delivery attempt of a record to a leg.
type wait struct {
	leg string
	ch  chan error
}

func newOutbox(h *Hub) *outbox {
	ctx, cancel := context.WithCancel(context.Background())
	return &outbox{h: h, ctx: ctx, cancel: cancel, lines: map[lineKey]*line{}, plain: leased{ctx: ctx, cancel: func() {}}}
}

// deliver starts (or wakes) the lines of the legs a new record at seq is addressed to, and
// returns the waits for its first attempts. With inline set, one line that was idle is not
// started but returned, marked running, for the caller to run (runInline): the caller is about
// to wait for the first attempt anyway, and making it in the caller's goroutine saves a
// goroutine and two hand-overs per activity.
func (o *outbox) deliver(convID string, seq int64, to []string, inline bool) (waits []wait, run *lineKey) {
	if len(to) == 0 {
		return nil, nil
	}
	waits = make([]wait, 0, len(to))
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, leg := range to {
		k := lineKey{convID, leg}
		l := o.lineLocked(k)
		ch := make(chan error, 1)
		if err, ok := l.reported(seq); ok {
			ch <- err
		} else if l.failing != nil {
			ch <- l.failing // queued behind a record the leg keeps failing: say so now
		} else {
			if l.waiters == nil {
				l.waiters = map[int64][]chan error{}
			}
			l.waiters[seq] = append(l.waiters[seq], ch)
		}
		waits = append(waits, wait{leg: leg, ch: ch})
		if inline && run == nil && !l.running {
			l.running = true
			o.pumps.Add(1)
			run = &k
			continue
		}
		o.wakeLocked(k, l)
	}
	return waits, run
}

// kick wakes a leg's line with nothing to wait for (a greeting, a resumed delivery).
func (o *outbox) kick(convID, leg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := lineKey{convID, leg}
	o.wakeLocked(k, o.lineLocked(k))
}

func (o *outbox) lineLocked(k lineKey) *line {
	l := o.lines[k]
	if l == nil {
		l = &line{handled: -1}
		o.lines[k] = l
	}
	return l
}

func (o *outbox) wakeLocked(k lineKey, l *line) {
	if l.running {
		l.kicked = true
		return
	}
	l.running = true
	o.pumps.Add(1)
	go o.pump(k)
}

// reported returns the first-attempt outcome of seq when this run reported it.
func (l *line) reported(seq int64) (error, bool) {
	if seq > l.handled {
		return nil, false
	}
	if o := l.recent[seq%outcomeRing]; o.set && o.seq == seq {
		return o.err, true
	}
	return nil, seq <= l.handled // long past: delivered, or its waiters were told already
}

// report records the outcome of a record's first attempt and tells its waiters.
func (o *outbox) report(k lineKey, seq int64, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lines[k]
	if l == nil {
		return
	}
	l.handled = max(l.handled, seq)
	l.recent[seq%outcomeRing] = outcome{seq: seq, err: err, set: true}
	for _, ch := range l.waiters[seq] {
		ch <- err
	}
	delete(l.waiters, seq)
}

// setFailing records that the line keeps failing (err) while it retries a record, or that it
// delivers again (nil). Callers waiting for records queued behind it are told at once: their
// activities are in the log, and will be delivered when the leg is back.
func (o *outbox) setFailing(k lineKey, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lines[k]
	if l == nil {
		return
	}
	l.failing = err
	if err == nil {
		return
	}
	for seq, chs := range l.waiters {
		for _, ch := range chs {
			ch <- err
		}
		delete(l.waiters, seq)
	}
}

// await waits for the first attempts, up to the delivery timeout, and returns their failures.
func (o *outbox) await(ctx context.Context, waits []wait) []error {
	if len(waits) == 0 {
		return nil
	}
	timer := time.NewTimer(o.h.cfg.DeliveryTimeout)
	defer timer.Stop()
	var errs []error
	for _, w := range waits {
		select {
		case err := <-w.ch:
			if err != nil {
				errs = append(errs, err)
			}
		case <-timer.C:
			errs = append(errs, &DeliveryError{Leg: w.leg, Timeout: true,
				Err: fmt.Errorf("no answer within %s", o.h.cfg.DeliveryTimeout)})
			timer.Reset(0) // the other legs had as long
		case <-ctx.Done():
			return append(errs, ctx.Err())
		}
	}
	return errs
}

// pump runs a line until it has nothing left to do.
func (o *outbox) pump(k lineKey) { o.loop(k, -2, resumeAt{seq: -1}, false, nil) }

// runInline runs a line that deliver returned in the caller's goroutine, up to the first
// attempt of the caller's record at seq; what is left (a retry, later records) goes on in a
// goroutine.
func (o *outbox) runInline(k lineKey, seq int64) {
	o.loop(k, -2, resumeAt{seq: -1, until: seq}, true, nil)
}

// resumeAt is where a run that handed over goes on: the record at seq is retried from attempt
// after wait (seq -1: nothing to retry); an inline run stops after the record at until.
type resumeAt struct {
	seq     int64
	attempt int
	wait    time.Duration
	started time.Time
	until   int64
}

// loop runs a line from cursor until it has nothing left to do, or, inline, until it must
// hand over to a goroutine. r is the run (its lease) a handover passes on; nil starts one.
func (o *outbox) loop(k lineKey, cursor int64, at resumeAt, inline bool, r *leased) {
	for {
		if r == nil {
			if r = o.acquire(k); r == nil { // another process delivers the line
				if o.finish(k, cursor) {
					o.pumps.Done()
					return
				}
				if inline {
					go o.loop(k, cursor, resumeAt{seq: -1}, false, nil)
					return
				}
				continue
			}
			if r.token != 0 {
				cursor = -2 // another process may have moved it
			}
		}
		var handover *resumeAt
		cursor, handover = o.drain(k, cursor, at, inline, r)
		if handover != nil {
			go o.loop(k, cursor, *handover, false, r)
			return
		}
		at = resumeAt{seq: -1}
		if r.token != 0 { // free the lease before finishing, so no process waits for it in vain
			o.release(k, r)
			r = nil
		}
		if o.finish(k, cursor) {
			o.pumps.Done()
			return
		}
		if inline { // woken meanwhile: that work is not the caller's
			go o.loop(k, cursor, at, false, r)
			return
		}
	}
}

// finish ends a run unless the line was woken meanwhile; waiters left over (a record reported
// in an earlier run, or a store failure) are told what the store knows.
func (o *outbox) finish(k lineKey, cursor int64) (done bool) {
	o.mu.Lock()
	l := o.lines[k]
	if l.kicked {
		l.kicked = false
		o.mu.Unlock()
		return false
	}
	l.running = false
	left := l.waiters
	l.waiters = nil
	delete(o.lines, k)
	o.mu.Unlock()
	if len(left) > 0 {
		o.tellLeftOver(k, cursor, left)
	}
	return true
}

func (o *outbox) tellLeftOver(k lineKey, cursor int64, left map[int64][]chan error) {
	c, cerr := o.h.store.Conversation(o.ctx, k.conv)
	for seq, chs := range left {
		var err error
		switch {
		case cerr != nil:
			err = &DeliveryError{Leg: k.leg, Err: cerr}
		case seq > cursor:
			err = &DeliveryError{Leg: k.leg, Retryable: true, Err: ErrDeliveryPending}
		default:
			err = c.deadError(k.leg, seq)
		}
		for _, ch := range chs {
			ch <- err
		}
	}
}

// deadError returns the failure recorded for a dead letter, or nil.
func (c *Conversation) deadError(leg string, seq int64) error {
	for _, d := range c.Dead {
		if d.Leg == leg && d.Seq == seq {
			return &DeliveryError{Leg: leg, Status: d.Status, Err: errors.New(d.Reason)}
		}
	}
	return nil
}

// drain delivers what the log holds for the line past cursor (-2: read it from the store),
// starting with the retry at says, and returns the new cursor; and, for an inline run that must
// stop, where a goroutine goes on.
func (o *outbox) drain(k lineKey, cursor int64, at resumeAt, inline bool, run *leased) (int64, *resumeAt) {
	ctx := run.ctx
	if cursor == -2 {
		cur, err := o.h.store.Cursor(ctx, k.conv, k.leg)
		if err != nil {
			o.h.log.Warn().Err(err).Str("conv_id", k.conv).Str("leg", k.leg).Msg("outbox: cursor not read")
			return -2, nil
		}
		cursor = cur
	}
	var c *Conversation // read once a record needs it
	if o.takeGreet(k) {
		if c = o.conversation(ctx, k); c != nil && !c.BotGreeted && c.Customer.User.ID != "" {
			_ = o.greet(ctx, c, c.Customer.User) // a failure is retried before the first record
		}
	}
	for ctx.Err() == nil {
		recs, err := o.h.store.Since(ctx, k.conv, cursor, drainBatch)
		if err != nil {
			o.h.log.Warn().Err(err).Str("conv_id", k.conv).Msg("outbox: log not read")
			return cursor, nil
		}
		for _, r := range recs {
			if !r.Addressed(k.leg) {
				cursor = r.Seq
				continue
			}
			if inline && r.Seq > at.until {
				return cursor, &resumeAt{seq: -1} // not the caller's: a goroutine goes on
			}
			if c == nil {
				if c = o.conversation(ctx, k); c == nil {
					return cursor, nil
				}
			}
			next, ok := o.send(run, k, c, r, at, inline)
			if next != nil {
				return cursor, next
			}
			if !ok {
				return cursor, nil // shutting down: the record stays pending
			}
			cursor = r.Seq
		}
		if len(recs) < drainBatch {
			// Caught up: a record addressed to the leg from now on wakes the line again
			// (deliver), which finish sees.
			return cursor, nil
		}
	}
	return cursor, nil
}

// drainBatch is how many records a pump reads from the log at a time.
const drainBatch = 64

func (o *outbox) conversation(ctx context.Context, k lineKey) *Conversation {
	c, err := o.h.store.Conversation(ctx, k.conv)
	if err != nil {
		o.h.log.Warn().Err(err).Str("conv_id", k.conv).Msg("outbox: conversation not read")
		return nil
	}
	return c
}

// greetAtStart wakes the bot leg's line of a new conversation whose user is known, to greet
// the bot before any activity (directline.md: conversationUpdate at start when the user id is
// known [AUTH]).
func (o *outbox) greetAtStart(convID, botLeg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := lineKey{convID, botLeg}
	l := o.lineLocked(k)
	l.greet = true
	o.wakeLocked(k, l)
}

// takeGreet reports, once, whether the line was woken to greet the bot.
func (o *outbox) takeGreet(k lineKey) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lines[k]
	g := l.greet
	l.greet = false
	return g
}

// send delivers one record to the line's leg, retrying as the package doc says, and
// acknowledges it once delivered or dead. It returns false when the outbox is shutting down;
// inline, it makes no retry but returns where a goroutine goes on. at says where a retry
// handed over resumes.
func (o *outbox) send(run *leased, k lineKey, c *Conversation, r Record, at resumeAt, inline bool) (*resumeAt, bool) {
	ctx := run.ctx
	leg := legByKey(c, k.leg)
	attempt, started := 1, time.Now()
	if at.seq == r.Seq {
		attempt, started = at.attempt, at.started
		if ctxutil.Sleep(ctx, at.wait) != nil {
			return nil, false
		}
	}
	for ; ; attempt++ {
		sent := time.Now()
		err := o.traced(ctx, c, leg, r, attempt)
		result := deliveryOutcome(ctx, err, started, o.h.cfg.RetryFor)
		o.h.cfg.Metrics.Delivered(leg.Channel, result, time.Since(sent))
		if attempt == 1 {
			o.report(k, r.Seq, err)
		}
		if err == nil {
			if attempt > 1 {
				o.setFailing(k, nil)
			}
			break
		}
		if ctx.Err() != nil {
			return nil, false
		}
		de := err.(*DeliveryError)
		if result == metrics.DeliveryDead {
			o.bury(ctx, k, r, de, attempt)
			o.setFailing(k, nil)
			break
		}
		o.setFailing(k, de)
		wait := backoff(attempt, de.RetryAfter)
		o.h.log.Info().Ctx(tracing.Context(ctx, r.Trace)).Err(err).Str("conv_id", k.conv).Str("activity_id", r.Activity.ID).Str("channel", leg.Channel).
			Int("attempt", attempt).Dur("retry_in", wait).Msg("delivery failed; retrying")
		if inline {
			return &resumeAt{seq: r.Seq, attempt: attempt + 1, wait: wait, started: started}, true
		}
		if ctxutil.Sleep(ctx, wait) != nil {
			return nil, false
		}
	}
	o.ack(k, run, r.Seq)
	return nil, ctx.Err() == nil
}

// traced makes one delivery attempt in a span of its own, the child of the span of the request
// that appended the record (Record.Trace): the channel's outbound call carries the same trace
// id. Its log lines carry it too (tracing.LogHook).
func (o *outbox) traced(ctx context.Context, c *Conversation, leg Leg, r Record, attempt int) error {
	ctx, span := tracing.StartDelivery(ctx, r.Trace, leg.Channel, c.ID, r.Activity.ID, attempt)
	err := o.attempt(ctx, c, leg, r.Activity)
	span.End(err)
	if e := o.h.log.Debug(); e != nil {
		e.Ctx(ctx).Str("conv_id", c.ID).Str("activity_id", r.Activity.ID).Str("channel", leg.Channel).
			Int("attempt", attempt).Bool("ok", err == nil).Msg("delivery attempt")
	}
	return err
}

// attempt makes one delivery: the bot is greeted first when it has not been.
func (o *outbox) attempt(ctx context.Context, c *Conversation, to Leg, a *activity.Activity) error {
	ch, err := o.h.channel(to.Channel)
	if err != nil {
		return &DeliveryError{Leg: to.Key(), Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, o.h.cfg.DeliveryTimeout)
	defer cancel()
	if to.Key() == c.Bot.Key() && !c.BotGreeted && a.From != nil {
		err = o.greet(ctx, c, *a.From)
	}
	if err == nil && o.h.cfg.Sealer != nil {
		a, err = o.h.cfg.Sealer.Open(c.ID, a)
	}
	if err == nil {
		_, err = ch.Send(ctx, to, a)
	}
	if err != nil {
		return asDeliveryError(to, err)
	}
	return nil
}

// deliveryOutcome is the outcome an attempt's error leads send to (the metrics' label):
// delivered, retried, or dead (given up on: send then buries it). An attempt cut short by
// shutdown is counted as retried: it is made again at the next start.
func deliveryOutcome(ctx context.Context, err error, started time.Time, retryFor time.Duration) string {
	if err == nil {
		return metrics.DeliveryOK
	}
	de, ok := err.(*DeliveryError)
	if ctx.Err() != nil || !ok {
		return metrics.DeliveryRetried
	}
	if !de.Retryable || de.Timeout || time.Since(started) >= retryFor {
		return metrics.DeliveryDead
	}
	return metrics.DeliveryRetried
}

// bury records a delivery that failed for good as a dead letter of the conversation.
func (o *outbox) bury(ctx context.Context, k lineKey, r Record, de *DeliveryError, attempts int) {
	o.h.log.Warn().Ctx(tracing.Context(ctx, r.Trace)).Err(de).Str("conv_id", k.conv).Str("activity_id", r.Activity.ID).Str("leg", k.leg).
		Int("attempt", attempts).Msg("delivery failed for good; recorded as dead")
	_, err := UpdateConversation(ctx, o.h.store, k.conv, func(c *Conversation) error {
		c.Dead = append(c.Dead, DeadLetter{Leg: k.leg, Seq: r.Seq, Status: de.Status, Reason: de.Error(), At: time.Now().UTC()})
		if len(c.Dead) > MaxDead {
			c.Dead = c.Dead[len(c.Dead)-MaxDead:]
		}
		return nil
	})
	if err != nil {
		o.h.log.Warn().Err(err).Str("conv_id", k.conv).Msg("dead letter not stored")
	}
}

func asDeliveryError(to Leg, err error) *DeliveryError {
	var de *DeliveryError
	if !errors.As(err, &de) {
		de = &DeliveryError{Leg: to.Key(), Err: err, Timeout: errors.Is(err, context.DeadlineExceeded)}
	}
	return de
}

// backoff is the wait before attempt+1: Retry-After when the far side gave one (capped at a
// minute), else 250ms doubling to 30s, with full jitter over its upper half.
func backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, time.Minute)
	}
	d := min(250*time.Millisecond<<min(attempt-1, 7), 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

// legByKey returns the conversation's leg with that key, or one rebuilt from the key for a leg
// the conversation no longer has (a contact center told of an end after it left).
func legByKey(c *Conversation, key string) Leg {
	if l, ok := c.LegWithKey(key); ok {
		return l
	}
	channel, id, _ := strings.Cut(key, "/")
	return Leg{Channel: channel, ConversationID: id}
}

// greet tells the bot, once per conversation, that it and then the user joined
// (conversationUpdate with membersAdded [bot], then [user]: the Emulator's and Direct Line's way),
// with fixed ids, so that a greeting repeated after a crash is recognisably the same. They are not
// in the log: Direct Line numbers only what the user and the bot say (directline.md, [CAP]).
func (o *outbox) greet(ctx context.Context, c *Conversation, user activity.ChannelAccount) error {
	ch, err := o.h.channel(c.Bot.Channel)
	if err != nil {
		return &DeliveryError{Leg: c.Bot.Key(), Err: err}
	}
	bot := c.Bot.Bot
	user = activity.ChannelAccount{ID: user.ID, Name: user.Name}
	for i, member := range []activity.ChannelAccount{bot, user} {
		cu := &activity.Activity{
			Type:         activity.TypeConversationUpdate,
			ID:           fmt.Sprintf("%s|cu%d", c.ID, i),
			Timestamp:    activity.NewTime(time.Now()),
			From:         &user,
			Recipient:    &bot,
			Conversation: &activity.ConversationAccount{ID: c.Bot.ConversationID},
			MembersAdded: []activity.ChannelAccount{member},
		}
		if _, err := ch.Send(ctx, c.Bot, cu); err != nil {
			return fmt.Errorf("greet bot: %w", err)
		}
	}
	c.BotGreeted = true
	_, err = UpdateConversation(ctx, o.h.store, c.ID, func(c *Conversation) error {
		if c.BotGreeted {
			return ErrNoChange
		}
		c.BotGreeted = true
		return nil
	})
	return err
}

// idle waits until no line is running, or ctx ends.
func (o *outbox) idle(ctx context.Context) error {
	for {
		o.mu.Lock()
		n := len(o.lines)
		o.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := ctxutil.Sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// resume wakes the line of every leg the store says has pending records (at start).
func (o *outbox) resume(ctx context.Context) error {
	pending, err := o.h.store.Pending(ctx)
	if err != nil {
		return fmt.Errorf("outbox: pending deliveries: %w", err)
	}
	for _, p := range pending {
		o.kick(p.ConversationID, p.Leg)
	}
	if len(pending) > 0 {
		o.h.log.Info().Int("legs", len(pending)).Msg("outbox: resuming pending deliveries")
	}
	return nil
}
