package dlclient

import "github.com/rs/zerolog"

// convLog is a session's logger: the client's, with the conversation's ids added to each event
// as it is written. zerolog's Logger.With would give every session a context buffer of its own
// (500 bytes, twice once the upstream conversation is known): about 1 KiB per idle
// conversation, in a process that holds thousands. An event below the level costs nothing
// here either: zerolog's methods on a nil *Event do nothing.
type convLog struct {
	l      *zerolog.Logger
	conv   string // the bridge conversation id
	upConv string // the upstream conversation id, once known
	peer   string // the upstream's host, once known
}

func (c convLog) with(e *zerolog.Event) *zerolog.Event {
	if e == nil {
		return nil
	}
	e = e.Str("conv_id", c.conv)
	if c.upConv != "" {
		e = e.Str("upstream_conv_id", c.upConv).Str("peer", c.peer)
	}
	return e
}

func (c convLog) Debug() *zerolog.Event { return c.with(c.l.Debug()) }
func (c convLog) Info() *zerolog.Event  { return c.with(c.l.Info()) }
func (c convLog) Warn() *zerolog.Event  { return c.with(c.l.Warn()) }
func (c convLog) Error() *zerolog.Event { return c.with(c.l.Error()) }

// upstream returns the logger with the upstream conversation's id and host.
func (c convLog) upstream(upConv, peer string) convLog {
	c.upConv, c.peer = upConv, peer
	return c
}
