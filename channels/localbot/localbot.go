// Package localbot is a bot that runs inside the bridge: it answers each message with
// "echo: <text>" and greets the user when they join. It is the bot of a run with no bot endpoint
// configured, and the fast bot of benchmarks, attached through the same Channel interface as a
// remote bot.
package localbot

import (
	"context"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// ChannelName is the name the bot registers with the Hub.
const ChannelName = "localbot"

// Bot is the in-process echo bot.
type Bot struct {
	hub bridge.Receiver
	// Greeting is sent when the user joins; empty sends nothing.
	Greeting string
}

var _ bridge.Channel = (*Bot)(nil)

// New returns the bot, which hands its replies to hub (the Hub); the caller registers it with
// the Hub.
func New(hub bridge.Receiver, greeting string) *Bot {
	return &Bot{hub: hub, Greeting: greeting}
}

// Name implements bridge.Channel.
func (b *Bot) Name() string { return ChannelName }

// Send implements bridge.Channel: the bot's turn. Its replies go back through the Hub before the
// turn ends, as a botbuilder bot's Connector calls do.
func (b *Bot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	var reply *activity.Activity
	switch {
	case a.Type == activity.TypeMessage:
		reply = &activity.Activity{Type: activity.TypeMessage, Text: "echo: " + a.Text, ReplyToID: a.ID}
	case a.Type == activity.TypeConversationUpdate && b.Greeting != "" && len(a.MembersAdded) > 0 && a.MembersAdded[0].ID != to.Bot.ID:
		reply = &activity.Activity{Type: activity.TypeMessage, Text: b.Greeting}
	default:
		return "", nil
	}
	bot := to.Bot
	reply.From = &bot
	reply.InputHint = activity.InputHintAccepting
	reply.Timestamp = activity.NewTime(time.Now())
	if a.From != nil {
		user := activity.ChannelAccount{ID: a.From.ID, Name: a.From.Name}
		reply.Recipient = &user
	}
	_, err := b.hub.Receive(ctx, to, reply, "")
	return "", err
}
