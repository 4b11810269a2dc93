package omnichannel

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/internal/connector"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const (
	testAppID    = "aaaaaaaa-1111-2222-3333-bbbbbbbbbbbb"
	testPassword = "oc-app-secret-never-logged"
	waitFor      = 15 * time.Second
)

// scriptBot is an in-process bot on the Hub's bot leg. Its turn answers through the Hub before
// it ends, as a botbuilder bot's Connector calls do:
//
//	"handoff"       Bot Framework handoff.initiate, value {"Context":{…},"MessageToAgent":…}
//	"handoff long"  the same with a 40 KB agent note
//	"nurse"         Health Bot's escalation: 'Escalating...' with Omnichannel Escalate tags
//	"bye"           "Goodbye", then endOfConversation (completedSuccessfully)
//	"close"         Copilot's handoff.initiate with CloseOmnichannelConversation
//	"big N"         a message of N bytes of words
//	"bigatt"        a message with a small and a 40 KB attachment and suggested actions
//	anything else   "echo: <text>"
type scriptBot struct {
	hub *bridge.Hub
	mu  sync.Mutex
	got []*activity.Activity
}

func (b *scriptBot) Name() string { return "scriptbot" }

func (b *scriptBot) Send(ctx context.Context, to bridge.Leg, a *activity.Activity) (string, error) {
	b.mu.Lock()
	b.got = append(b.got, a)
	b.mu.Unlock()
	if a.Type != activity.TypeMessage {
		return "", nil
	}
	bot := to.Bot
	reply := func(r *activity.Activity) error {
		r.From = &bot
		r.ReplyToID = a.ID
		_, err := b.hub.Receive(ctx, to, r, "")
		return err
	}
	msg := func(text string) *activity.Activity {
		return &activity.Activity{Type: activity.TypeMessage, Text: text}
	}
	var err error
	switch text := a.Text; {
	case text == "handoff":
		err = reply(&activity.Activity{Type: activity.TypeEvent, Name: "handoff.initiate",
			Value: json.RawMessage(`{"Context":{"Skill":"billing","Priority":2,"VIP":true},"MessageToAgent":"Customer asks about a refund"}`)})
	case text == "handoff long":
		note, _ := json.Marshal(words(40 * 1024))
		err = reply(&activity.Activity{Type: activity.TypeEvent, Name: "handoff.initiate",
			Value: json.RawMessage(`{"Context":{"Skill":"billing"},"MessageToAgent":` + string(note) + `}`)})
	case text == "nurse":
		m := msg("Escalating...")
		m.ChannelData = json.RawMessage(`{"tags":"{\"type\":\"Escalate\",\"context\":{\"EscalateToAgent\":1,\"BotHandoffTopic\":\"Nurse\"}}"}`)
		err = reply(m)
	case text == "bye":
		if err = reply(msg("Goodbye")); err == nil {
			err = reply(&activity.Activity{Type: activity.TypeEndOfConversation, Code: "completedSuccessfully"})
		}
	case text == "close":
		err = reply(&activity.Activity{Type: activity.TypeEvent, Name: "handoff.initiate",
			Value: json.RawMessage(`{"va_Scope":"bot","CloseOmnichannelConversation":true}`)})
	case strings.HasPrefix(text, "big "):
		var n int
		_ = json.Unmarshal([]byte(strings.TrimPrefix(text, "big ")), &n)
		err = reply(msg(words(n)))
	case text == "bigatt":
		m := msg("Here are your documents.")
		m.Attachments = []activity.Attachment{
			{ContentType: "text/plain", Name: "small.txt", Content: json.RawMessage(`"small"`)},
			{ContentType: "application/json", Name: "huge.json", Content: json.RawMessage(`"` + strings.Repeat("x", 40*1024) + `"`)},
		}
		m.SuggestedActions = &activity.SuggestedActions{Actions: []activity.CardAction{{Type: "imBack", Title: "OK", Value: json.RawMessage(`"ok"`)}}}
		err = reply(m)
	default:
		err = reply(msg("echo: " + text))
	}
	return "", err
}

func (b *scriptBot) received() []*activity.Activity {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got)
}

// words returns about n bytes of words separated by single spaces.
func words(n int) string {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString([]string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}[i%6])
	}
	return sb.String()
}

// rig is a bridge — a Hub on the memory store, this channel on the customer side, a bot
// channel on the bot side — serving /api/messages on 127.0.0.1, with the fake Omnichannel.
type rig struct {
	t    testing.TB
	oc   *fakeOC
	hub  *bridge.Hub
	ch   *Channel
	bot  *scriptBot
	mux  *http.ServeMux
	url  string
	logs *testutil.Buffer
	log  zerolog.Logger
}

type rigOptions struct {
	botChannel string                               // the Hub's bot channel; default the script bot
	cfg        func(*Config)                        // changes the channel's config
	bots       func(r *rig, hub *bridge.Hub)        // registers the bot channel when botChannel is set
	before     func(mux *http.ServeMux, url string) // mounts other routes before the server starts
	quiet      bool                                 // no logs (fuzzing)
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, logs: &testutil.Buffer{}, mux: http.NewServeMux()}
	r.oc = newFakeOC(t, testAppID, testPassword)
	r.log = zerolog.New(zerolog.MultiLevelWriter(r.logs, zerolog.NewTestWriter(t))).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	if o.quiet {
		r.log = zerolog.Nop()
	}
	srv := httptest.NewUnstartedServer(r.mux)
	r.url = "http://" + srv.Listener.Addr().String()
	botChannel := o.botChannel
	if botChannel == "" {
		botChannel = "scriptbot"
	}
	r.hub = bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: botChannel, DeliveryTimeout: 15 * time.Second}, r.log)
	t.Cleanup(r.hub.Close)
	if o.botChannel == "" {
		r.bot = &scriptBot{hub: r.hub}
		r.hub.Register(r.bot)
	} else {
		o.bots(r, r.hub)
	}
	cfg := Config{
		AppID: testAppID, AppPassword: testPassword,
		TokenURL: r.oc.tokenURL(), OpenIDMetadataURL: r.oc.metadataURL(),
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, MaxRetryAfter: 5 * time.Second,
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	ch, err := New(cfg, r.hub, r.log)
	require.NoError(t, err)
	r.ch = ch
	r.hub.Register(ch)
	ch.Register(r.mux)
	if o.before != nil {
		o.before(r.mux, r.url)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		_ = ch.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.hub.Wait(ctx)
	})
	r.oc.mu.Lock()
	r.oc.bridgeURL = r.url + MessagesPath
	r.oc.mu.Unlock()
	return r
}

// conv returns the bridge conversation of an Omnichannel conversation.
func (r *rig) conv(ocConv string) *bridge.Conversation {
	r.t.Helper()
	c, err := r.hub.Conversation(context.Background(), ConversationID(ocConv))
	require.NoError(r.t, err)
	return c
}

// waitTexts waits until the fake took customer-visible messages with all of texts.
func (r *rig) waitTexts(ocConv string, texts ...string) {
	r.t.Helper()
	require.Eventually(r.t, func() bool {
		got := r.oc.texts(ocConv)
		for _, want := range texts {
			if !slices.Contains(got, want) {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond, "omnichannel got the bot's messages "+strings.Join(texts, ", "))
}

// waitCommands waits until the fake took n commands of type typ.
func (r *rig) waitCommands(ocConv, typ string, n int) []*activity.Activity {
	r.t.Helper()
	require.Eventually(r.t, func() bool { return len(r.oc.commands(ocConv, typ)) >= n }, waitFor, 10*time.Millisecond, "omnichannel got "+typ)
	return r.oc.commands(ocConv, typ)
}

// errorBody is the Connector ErrorResponse.
type errorBody = connector.ErrorBody
