package desk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

// BotChannelName is the name the sandbox bot registers with the Hub.
const BotChannelName = "sandboxbot"

// Bot is the scripted sandbox bot. It runs inside the bridge and is attached through the same
// Channel interface as any bot: it answers the Hub's deliveries with activities of its own
// through Hub.Receive, and asks for humans the way real bots do (Health Bot tags, Bot Framework
// or Copilot handoff.initiate).
type Bot struct {
	hub    BotHub
	script *Script
	log    zerolog.Logger

	mu     sync.Mutex
	timers map[string]*silence // conversation id -> inactivity timers
	closed bool

	signIn atomic.Pointer[signInService] // the token service, when oauth.connections run it
}

type silence struct {
	leg           bridge.Leg
	remind, close *time.Timer
}

var _ bridge.Channel = (*Bot)(nil)

// BotHub is what the sandbox bot needs of the bridge's Hub: it hands the bot's activities over
// (Receiver) and reads the conversation it answers (Conversations). *bridge.Hub implements it.
type BotHub interface {
	bridge.Receiver
	bridge.Conversations
}

var _ BotHub = (*bridge.Hub)(nil)

// NewBot returns the sandbox bot running script, which answers through hub; the caller
// registers it with the Hub.
func NewBot(hub BotHub, script *Script, log zerolog.Logger) *Bot {
	return &Bot{hub: hub, script: script, log: log.With().Str("channel", BotChannelName).Logger(), timers: map[string]*silence{}}
}

// Name implements bridge.Channel.
func (b *Bot) Name() string { return BotChannelName }

// Close stops the inactivity timers.
func (b *Bot) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, s := range b.timers {
		s.stop()
		delete(b.timers, id)
	}
}

// Send implements bridge.Channel: the bot's turn.
func (b *Bot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	switch a.Type {
	case activity.TypeConversationUpdate:
		for _, m := range a.MembersAdded {
			if m.ID != to.Bot.ID && b.script.Greeting != "" {
				return "", b.say(ctx, to, a, b.script.Greeting)
			}
		}
	case activity.TypeEndOfConversation:
		b.quiet(to.ConversationID)
	case activity.TypeMessage:
		return "", b.answer(ctx, to, a)
	case activity.TypeEvent:
		if a.Name == tokensResponse { // the token service completed a sign-in (signin.go)
			return "", b.say(ctx, to, a, textSignedIn)
		}
	}
	return "", nil // events (handoff.status included) and the rest: nothing to say
}

func (b *Bot) answer(ctx context.Context, to bridge.Leg, a *activity.Activity) error {
	if done, err := b.tryCode(ctx, to, a); done || err != nil {
		return err
	}
	r := b.script.match(a.Text)
	if r == nil {
		b.watch(to)
		return nil
	}
	if r.Reply != "" {
		if err := b.echo(ctx, to, a, r.Reply); err != nil {
			return err
		}
	}
	switch {
	case r.SignIn != nil:
		if err := b.signInCard(ctx, to, a, r.SignIn); err != nil {
			return err
		}
	case r.Escalate != nil:
		b.quiet(to.ConversationID)
		esc := &handoff.Escalation{AgentNote: r.Escalate.Note, Context: r.Escalate.vars}
		sig := handoff.Signal{Kind: handoff.SignalEscalation, Escalation: esc}
		out, _, err := handoff.Emit(sig, handoff.Dialect(r.Escalate.Dialect), handoff.EmitOptions{})
		if err != nil {
			return err
		}
		return b.send(ctx, to, a, out)
	case r.End:
		b.quiet(to.ConversationID)
		return b.send(ctx, to, a, &activity.Activity{Type: activity.TypeEndOfConversation, Code: handoff.CodeCompletedSuccessfully})
	}
	b.watch(to)
	return nil
}

// stampMargin is room, in characters, for what the Hub and the customer's channel add to a
// reply of the bot (id, conversation, channelId, serviceUrl).
const stampMargin = 2048

// echo sends reply with {{text}} replaced by the customer's words, cut short (ending in "…")
// when the reply would otherwise go over the bridge's own limit of activity.MaxActivityChars
// serialized characters: a customer's message near the limit, echoed with a prefix, would.
func (b *Bot) echo(ctx context.Context, to bridge.Leg, a *activity.Activity, reply string) error {
	probe := &activity.Activity{Type: activity.TypeMessage, InputHint: activity.InputHintAccepting}
	b.address(to, a, probe)
	envelope, err := activity.MarshalActivity(probe) // as the log encodes it: no second pass
	if err != nil {
		return err
	}
	budget := activity.MaxActivityChars - utf8.RuneCount(envelope) - stampMargin
	return b.say(ctx, to, a, fitReply(reply, a.Text, budget))
}

// fitReply returns reply with {{text}} replaced by text, or by the longest beginning of text
// followed by "…" whose result, as a JSON string, has at most budget characters.
func fitReply(reply, text string, budget int) string {
	fill := func(t string) string { return strings.ReplaceAll(reply, "{{text}}", t) }
	if full := fill(text); jsonChars(full) <= budget {
		return full
	}
	runes := []rune(text)
	lo, hi := 0, len(runes)
	for lo < hi { // the longest prefix that fits
		mid := (lo + hi + 1) / 2
		if jsonChars(fill(string(runes[:mid])+"…")) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return fill(string(runes[:lo]) + "…")
}

// jsonChars is how many characters s takes as a JSON string (escapes included, HTML escaping
// too: an upper bound for activity.Marshal, which does not escape HTML).
func jsonChars(s string) int {
	return utf8.RuneCount(activity.AppendJSONString(nil, s)) // json.Marshal's bytes, fewer allocations
}

func (b *Bot) say(ctx context.Context, to bridge.Leg, replyTo *activity.Activity, text string) error {
	return b.send(ctx, to, replyTo, &activity.Activity{Type: activity.TypeMessage, Text: text, InputHint: activity.InputHintAccepting})
}

// send addresses out as the bot's reply on leg to and hands it to the Hub.
func (b *Bot) send(ctx context.Context, to bridge.Leg, replyTo *activity.Activity, out *activity.Activity) error {
	key := replyKey(replyTo, out)
	b.address(to, replyTo, out)
	_, err := b.hub.Receive(ctx, to, out, key)
	return err
}

// replyKey is the idempotency key of a reply to replyTo: delivery is at least once (an instance
// that dies between the bot's turn and its acknowledgement leaves the activity to be delivered
// again, under the same id), and the same activity must not be answered twice. It is derived
// from the activity answered and what the reply says, so the several replies of one turn keep
// keys of their own. Replies to nothing (the bot's own timers) have none.
func replyKey(replyTo, out *activity.Activity) string {
	if replyTo == nil || replyTo.ID == "" {
		return ""
	}
	h := sha256.New()
	for _, part := range []string{out.Type, out.Name, out.Text, string(out.ChannelData), string(out.Value), out.Code} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "sandboxbot:" + replyTo.ID + ":" + hex.EncodeToString(h.Sum(nil)[:12])
}

// address sets what makes out the bot's reply on leg to: from, timestamp, recipient and replyToId.
func (b *Bot) address(to bridge.Leg, replyTo *activity.Activity, out *activity.Activity) {
	bot := to.Bot
	if bot.Name == "" {
		bot.Name = b.script.Name
	}
	out.From = &bot
	out.Timestamp = activity.NewTime(time.Now())
	if replyTo != nil {
		if replyTo.From != nil {
			user := activity.ChannelAccount{ID: replyTo.From.ID, Name: replyTo.From.Name}
			out.Recipient = &user
		}
		if replyTo.Type == activity.TypeMessage {
			out.ReplyToID = replyTo.ID
		}
	}
}

// watch (re)starts the inactivity timers of a conversation after the customer spoke.
func (b *Bot) watch(to bridge.Leg) {
	in := b.script.Inactivity
	if in == nil || (in.RemindAfter == 0 && in.EndAfter == 0) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if old := b.timers[to.ConversationID]; old != nil {
		old.stop()
	}
	s := &silence{leg: to}
	if in.RemindAfter > 0 {
		s.remind = time.AfterFunc(in.RemindAfter, func() { b.nudge(to, false) })
	}
	if in.EndAfter > 0 {
		s.close = time.AfterFunc(in.EndAfter, func() { b.nudge(to, true) })
	}
	b.timers[to.ConversationID] = s
}

// nudge sends the reminder, or ends the conversation, if the bot still has it.
func (b *Bot) nudge(to bridge.Leg, end bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := b.hub.Conversation(ctx, to.ConversationID)
	if err != nil || c.State != bridge.StateBot {
		b.quiet(to.ConversationID)
		return
	}
	in := b.script.Inactivity
	if !end {
		err = b.say(ctx, to, nil, in.Reminder)
	} else {
		b.quiet(to.ConversationID)
		if err = b.say(ctx, to, nil, in.EndText); err == nil {
			err = b.send(ctx, to, nil, &activity.Activity{Type: activity.TypeEndOfConversation, Code: handoff.CodeBotTimedOut})
		}
	}
	if err != nil {
		b.log.Warn().Err(err).Str("conv_id", to.ConversationID).Bool("end", end).Msg("inactivity message not sent")
	}
}

// quiet stops a conversation's inactivity timers.
func (b *Bot) quiet(convID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.timers[convID]; s != nil {
		s.stop()
		delete(b.timers, convID)
	}
}

func (s *silence) stop() {
	if s.remind != nil {
		s.remind.Stop()
	}
	if s.close != nil {
		s.close.Stop()
	}
}
