package desk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
)

// Several instances. With Config.Leases set (the store is shared by several bridge
// processes), the state in the store is the routing state, and each instance's engine a copy
// of it: every change of the engine (an escalation entering routing, an agent's presence,
// accept, decline, transfer or end, a customer's end, the clock's offers and timeouts) is a
// decision (decide), made by one instance of the whole desk at a time:
//
//  1. take the desk's routing lease (routingLease, a lease of the bridge's own; waiting for it
//     up to decideWait);
//  2. reload the engine from the store (what another instance decided since);
//  3. change the engine, and store what changed (persist);
//  4. release the lease.
//
// So an agent's capacity, a queue's round-robin turn and an offer are decided once across
// instances. The routing events of a decision (messages to the customer, the Hub's Accept and
// End) are carried out by the instance that made it, once. Each instance's clock tick is a
// decision too, which also brings its copy up to date: agents' pages connected to it learn
// within a tick of what another instance decided (refresh).
//
// Transcripts reach agents' pages from the log: the instance a page is connected to watches the
// log of each conversation offered to or held by its agent (Hub.Watch, woken across instances)
// and pushes each new line, whichever instance appended it or delivered it to the desk leg.
// syncWatches, on each tick, starts the watches of conversations that came to this instance's
// pages (with a fresh view) and stops those that left.
//
// decideMu serializes decisions within the process; it is held while the store is called, and
// only d.mu (a leaf) is taken under it.

// busyError is a decision that could not be made for now: the lease stayed with another
// instance, or the store failed. Worth trying again.
type busyError struct{ err error }

func (e *busyError) Error() string { return e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }

// routingLease is the name of the desk's lease (on conversation "", the bridge's own).
const routingLease = "desk/routing"

// Bounds of a decision: how long it waits for the lease, and how long it may hold it (the
// lease lasts decideLease; a decision that has not finished by decideTimeout gives up, so it
// cannot write after its lease ran out unless the process stalls for decideLease-decideTimeout).
const (
	decideWait    = 10 * time.Second
	decideTimeout = 5 * time.Second
	decideLease   = 15 * time.Second
	leasePoll     = 20 * time.Millisecond
)

// decide makes fn's change of the engine as the desk's one decision of the moment (see above),
// or simply runs fn with a desk of one process. An error of fn leaves the stored state as it
// was.
func (d *Desk) decide(ctx context.Context, fn func() error) error {
	if d.leases == nil {
		return fn()
	}
	notes, err := d.decideShared(ctx, fn)
	for _, n := range notes { // pages learn of other instances' decisions, with no lock held
		n()
	}
	return err
}

func (d *Desk) decideShared(ctx context.Context, fn func() error) (notes []func(), err error) {
	d.decideMu.Lock()
	defer d.decideMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, decideWait)
	defer cancel()
	var tok int64
	for {
		var ok bool
		tok, ok, err = d.leases.Acquire(ctx, "", routingLease, decideLease)
		if err == nil && ok {
			break
		}
		if err == nil {
			err = ctx.Err()
		}
		if ctx.Err() != nil {
			return nil, &busyError{fmt.Errorf("desk: routing is busy: %w", err)}
		}
		t := time.NewTimer(leasePoll)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer rcancel()
		if rerr := d.leases.Release(rctx, "", routingLease, tok); rerr != nil {
			d.log.Warn().Err(rerr).Msg("desk: routing lease not released; it runs out")
		}
	}()
	ctx, cancel2 := context.WithTimeout(ctx, decideTimeout)
	defer cancel2()
	if notes, err = d.reload(ctx); err != nil {
		return nil, &busyError{err}
	}
	if err := fn(); err != nil {
		return notes, err
	}
	d.persist(ctx)
	return notes, nil
}

// reload replaces the engine's state and the desk's notes with the store's, and returns what
// to tell this instance's agents' pages of the differences.
func (d *Desk) reload(ctx context.Context) ([]func(), error) {
	st, infos, written, shared, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	if shared == d.writtenShared && sameTasks(written, d.written) {
		return nil, nil // nothing changed since this instance's last decision or reload
	}
	old := d.engine.Export()
	if err := d.engine.Restore(st); err != nil {
		return nil, fmt.Errorf("desk: reload routing state: %w", err)
	}
	d.mu.Lock()
	d.convs = infos
	d.mu.Unlock()
	d.written, d.writtenShared = written, shared
	return d.changes(old, d.engine.Export()), nil
}

func sameTasks(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// load reads the routing state from the store: the engine's state, the desk's notes, and the
// stored JSON of each task and of the shared state (what persist compares with). A stored task
// whose workstream the configuration no longer has is dropped.
func (d *Desk) load(ctx context.Context) (st routing.State, infos map[string]*convInfo, written map[string]string, shared string, err error) {
	st = routing.State{Version: routing.StateVersion}
	switch raw, err := d.hub.Value(ctx, "", routingKey); {
	case errors.Is(err, bridge.ErrNotFound):
	case err != nil:
		return st, nil, nil, "", fmt.Errorf("desk: read routing state: %w", err)
	default:
		if err := json.Unmarshal(raw, &st); err != nil {
			return st, nil, nil, "", fmt.Errorf("desk: decode routing state: %w", err)
		}
		shared = string(raw)
	}
	tasks, err := d.hub.Values(ctx, taskKey)
	if err != nil {
		return st, nil, nil, "", fmt.Errorf("desk: read tasks: %w", err)
	}
	infos, written = map[string]*convInfo{}, map[string]string{}
	st.Conversations = st.Conversations[:0]
	for id, raw := range tasks {
		if id == "" {
			continue
		}
		var t storedTask
		if err := json.Unmarshal(raw, &t); err != nil || t.Routing.ID != id || !d.hasWorkstream(t.Routing.Workstream) {
			d.log.Warn().Str("conv_id", id).Msg("stored task dropped: unreadable, or of a workstream no longer configured")
			continue
		}
		st.Conversations = append(st.Conversations, t.Routing)
		if t.Info != nil {
			infos[id] = t.Info
		}
		written[id] = string(raw)
	}
	return st, infos, written, shared, nil
}

// changes returns what to tell this instance's pages of the routing state going from old to
// now: conversations offered, assigned or moved, gone, and agents' presence.
func (d *Desk) changes(old, now routing.State) []func() {
	var notes []func()
	before := map[string]routing.ConversationState{}
	for _, c := range old.Conversations {
		before[c.ID] = c
	}
	for _, c := range now.Conversations {
		b, had := before[c.ID]
		delete(before, c.ID)
		if had && b.Stage == c.Stage && b.Agent == c.Agent && b.Queue == c.Queue {
			continue
		}
		id := c.ID
		if had && b.Agent != "" && b.Agent != c.Agent {
			agent := b.Agent
			notes = append(notes, func() { d.sendTo(agent, deskMsg{Type: "removed", ConversationID: id}); d.refreshAgent(agent) })
		}
		notes = append(notes, func() { d.refresh(id) })
	}
	for id := range before {
		notes = append(notes, func() { d.broadcastRemoved(id) })
	}
	pres := map[string]routing.Presence{}
	for _, a := range old.Agents {
		pres[a.ID] = a.Presence
	}
	for _, a := range now.Agents {
		if pres[a.ID] != a.Presence {
			agent := a.ID
			notes = append(notes, func() { d.refreshAgent(agent) })
		}
	}
	return notes
}

// convWatch is the watch of one conversation's log for this instance's pages.
type convWatch struct {
	gen   int   // bumped when the watch restarts: older callbacks do nothing
	after int64 // the last seq pushed (or in the view the page got)
	stop  func() bool
}

// watchFrom (re)starts pushing the conversation's transcript lines past after to its agent's
// pages on this instance.
func (d *Desk) watchFrom(convID string, after int64) {
	d.mu.Lock()
	w := d.watches[convID]
	if w == nil {
		w = &convWatch{}
		d.watches[convID] = w
	}
	if w.stop != nil {
		w.stop()
	}
	w.gen++
	w.after, w.stop = after, nil
	gen := w.gen
	d.mu.Unlock()
	d.arm(convID, gen, after)
}

// arm watches the log past after for the watch's generation gen.
func (d *Desk) arm(convID string, gen int, after int64) {
	stop := d.hub.Watch(convID, after, func() { d.pushNew(convID, gen) })
	d.mu.Lock()
	defer d.mu.Unlock()
	if w := d.watches[convID]; w != nil && w.gen == gen {
		w.stop = stop
		return
	}
	stop()
}

// pushNew pushes the lines the log gained to the conversation's agent's pages, and watches on.
func (d *Desk) pushNew(convID string, gen int) {
	d.mu.Lock()
	w := d.watches[convID]
	if w == nil || w.gen != gen {
		d.mu.Unlock()
		return
	}
	after := w.after
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), decideTimeout)
	defer cancel()
	recs, err := d.hub.Since(ctx, convID, after, 500)
	if err != nil { // gone, or the store failing: syncWatches starts it again with a fresh view
		d.mu.Lock()
		if w := d.watches[convID]; w != nil && w.gen == gen {
			delete(d.watches, convID)
		}
		d.mu.Unlock()
		return
	}
	for _, r := range recs {
		if e, ok := entryOf(r); ok {
			d.pushLine(convID, e)
		}
		after = r.Seq
	}
	d.mu.Lock()
	if w := d.watches[convID]; w == nil || w.gen != gen {
		d.mu.Unlock()
		return
	}
	w.after = after
	d.mu.Unlock()
	d.arm(convID, gen, after)
}

// syncWatches watches the logs of the conversations offered to or held by agents with a page
// on this instance, and stops watching the others.
func (d *Desk) syncWatches() {
	want := map[string]bool{}
	convs := d.engine.Export().Conversations
	d.mu.Lock()
	for _, c := range convs {
		if c.Agent != "" && (c.Stage == routing.StageOffered || c.Stage == routing.StageAssigned) && len(d.socks[c.Agent]) > 0 {
			want[c.ID] = true
		}
	}
	var start []string
	for id := range want {
		if d.watches[id] == nil {
			start = append(start, id)
		}
	}
	for id, w := range d.watches {
		if !want[id] {
			if w.stop != nil {
				w.stop()
			}
			delete(d.watches, id)
		}
	}
	d.mu.Unlock()
	for _, id := range start {
		d.refresh(id) // a fresh view, from which the watch starts
	}
}
