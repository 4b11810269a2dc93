package desk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/channels/desk/routing"
)

// The desk's state is in the bridge's store, in two kinds of values:
//
//   - taskKey, one per conversation in routing (a task): its routing state and what the desk
//     knows of it (storedTask), swept with the conversation, removed when it leaves routing;
//   - routingKey, the bridge's own (conversation ""): agents' presence, the queues'
//     round-robin order and average wait, the routing sequence number (a routing.State
//     without conversations).
//
// After each task of the worker (with several instances: each decision, see shared.go) only
// the values that changed are written: a task touches one
// or a few conversations, not the whole desk. What was last written is cached to tell. A
// crash between the writes of one task may leave the shared value a step behind the tasks
// (a round-robin turn, a presence), never a conversation lost from routing.
const (
	taskKey    = "desk/task"
	routingKey = "desk/routing"
)

// storedTask is a conversation's value under taskKey.
type storedTask struct {
	Routing routing.ConversationState `json:"routing"`
	Info    *convInfo                 `json:"info,omitempty"`
}

// restore loads the routing state from the store into the engine and the desk's
// conversations (see load).
func (d *Desk) restore(ctx context.Context) error {
	st, infos, written, shared, err := d.load(ctx)
	if err != nil {
		return err
	}
	if shared == "" && len(written) == 0 {
		return nil
	}
	if err := d.engine.Restore(st); err != nil {
		return fmt.Errorf("desk: restore routing state: %w", err)
	}
	d.convs, d.written, d.writtenShared = infos, written, shared
	d.log.Info().Int("conversations", len(st.Conversations)).Msg("routing state restored")
	return nil
}

func (d *Desk) hasWorkstream(name string) bool {
	for _, w := range d.engine.Config().Workstreams {
		if w.Name == name {
			return true
		}
	}
	return false
}

// persist stores what changed of the routing state since the last call: the tasks that
// changed, entered or left routing, and the shared state. It runs on the worker only (with
// several instances: in a decision, under decideMu).
func (d *Desk) persist(ctx context.Context) {
	st := d.engine.Export()
	d.mu.Lock()
	infos := make(map[string]*convInfo, len(st.Conversations))
	for _, c := range st.Conversations {
		if info := d.convs[c.ID]; info != nil {
			infos[c.ID] = info
		}
	}
	for id := range d.convs {
		if infos[id] == nil {
			delete(d.convs, id) // out of routing: forget it
		}
	}
	d.mu.Unlock()
	live := make(map[string]bool, len(st.Conversations))
	for _, c := range st.Conversations {
		live[c.ID] = true
		d.write(ctx, c.ID, taskKey, storedTask{Routing: c, Info: infos[c.ID]})
	}
	for id := range d.written {
		if !live[id] {
			d.write(ctx, id, taskKey, nil)
		}
	}
	st.Conversations = nil
	d.write(ctx, "", routingKey, st)
}

// write stores v (nil: removes the value) unless it is what was last written.
func (d *Desk) write(ctx context.Context, convID, key string, v any) {
	last := &d.writtenShared
	if convID != "" {
		s := d.written[convID]
		last = &s
	}
	var raw []byte
	if v != nil {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			d.log.Warn().Err(err).Str("conv_id", convID).Msg("desk state not encoded")
			return
		}
		if string(raw) == *last {
			return
		}
	}
	err := d.hub.PutValue(ctx, convID, key, raw)
	switch {
	case err != nil && !errors.Is(err, bridge.ErrUnknownConversation):
		d.log.Warn().Err(err).Str("conv_id", convID).Msg("desk state not stored")
	case raw == nil:
		delete(d.written, convID)
	case convID == "":
		d.writtenShared = string(raw)
	default: // also for a conversation the store no longer has: not tried again
		d.written[convID] = string(raw)
	}
}
