package routing

import "time"

// Position update intervals: Omnichannel tells waiting customers their position every 30
// seconds, every 60 seconds beyond 150 in the queue.
const (
	positionInterval     = 30 * time.Second
	positionIntervalLong = 60 * time.Second
	longQueue            = 150
)

// Tick runs what time drives, at the engine clock's now: agents whose desk has been gone for
// Config.DeskGrace go Offline (their offers go to others); offers not accepted within the
// workstream's OfferTimeout expire and go to the next agent; conversations waiting longer than
// their queue's waiting-time overflow are transferred or ended; an assignment cycle runs (so
// agents whose decline timeout passed get offers again); waiting customers whose position
// changed are told, at most every 30 seconds. Call it periodically (every few seconds), and
// once after Restore to resume assignment.
func (e *Engine) Tick() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.newOp()
	o.signOutDeskless()
	convs := e.sortedConvs()
	for _, c := range convs {
		if c.Stage == StageOffered && o.now.Sub(c.OfferedAt) >= e.ws[c.Workstream].OfferTimeout {
			o.unoffer(c, EventOfferExpired, true)
		}
	}
	for _, c := range convs {
		if c.Stage != StageWaiting {
			continue
		}
		r := e.queues[c.Queue].Overflow.WaitingTime
		if r != nil && o.now.Sub(c.EnqueuedAt) >= r.Exceeds {
			o.overflow(c, c.Queue, r, ReasonOverflowWaitingTime)
		}
	}
	o.finish()
	announced := map[string]bool{}
	for _, c := range o.entered {
		announced[c.ID] = true
	}
	for _, c := range e.sortedConvs() {
		if c.Stage != StageWaiting || announced[c.ID] || !e.ws[c.Workstream].ShowQueuePosition {
			continue
		}
		p := e.position(c)
		every := positionInterval
		if p > longQueue {
			every = positionIntervalLong
		}
		if p != c.LastPosition && o.now.Sub(c.LastPositionAt) >= every {
			o.sayPosition(c)
		}
	}
	return o.events
}
