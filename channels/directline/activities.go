package directline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// maxActivityBytes bounds the bytes read for one activity: 256K characters are at most 1 MiB of UTF-8.
const maxActivityBytes = 4 * activity.MaxActivityChars

// activitySet is the ActivitySet of GET /activities and of websocket frames.
type activitySet struct {
	Activities []json.RawMessage `json:"activities"`
	Watermark  string            `json:"watermark,omitempty"`
}

// appendSet appends the JSON of set to b. Its activities are compact JSON from the store.
func appendSet(b []byte, set activitySet) []byte {
	b = append(b, `{"activities":[`...)
	for i, a := range set.Activities {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, a...)
	}
	b = append(b, ']')
	if set.Watermark != "" {
		b = append(b, `,"watermark":`...)
		b = strconv.AppendQuote(b, set.Watermark)
	}
	return append(b, "}\n"...)
}

// visible reports whether a logged activity is shown to Direct Line clients: conversationUpdate
// never is (directline.md §2), nor are handoff commands meant for the bridge. Typing is shown
// only live on a websocket stream: Direct Line does not queue it, so it is not in the history
// a GET or a stream's replay returns (directline.md §2; botframework-sdk#4663). live is the
// last sequence number that was already in the log when the reader started (-1 for none), or
// noLive for a GET.
func (s *Server) visible(r bridge.Record, live int64) bool {
	switch {
	case r.Activity.Type == activity.TypeTyping:
		return live != noLive && r.Seq > live
	case r.Activity.Type == activity.TypeConversationUpdate, r.Activity.Type == activity.TypeInvokeResponse:
		return false
	case r.Activity.Type == activity.TypeInvoke && r.From == bridge.RoleCustomer:
		return false // a request the POST answers (handOverInvoke), not a line of the transcript
	case s.cfg.PassHandoffSignals && r.From == bridge.RoleBot:
		return true
	}
	return bridge.CustomerVisible(r.Activity)
}

// noLive marks a reader with no live part (GET /activities): it never sees typing.
const noLive = int64(-1 << 62)

// pageChunk is how many records page reads from the store at first: it reads a few at a time,
// so that a page of large activities never holds more than its budget and one chunk.
const pageChunk = 16

// setOverhead bounds the bytes of an ActivitySet beyond its activities and their commas.
const setOverhead = len(`{"activities":[],"watermark":""}`) + 24

// page reads the activities after watermark after, up to the page size and within the byte
// budget (Config.MaxPageBytes; one activity at least), as an ActivitySet whose watermark is the
// last sequence number read (or the one asked for, when none is new): a client asking again from
// it gets what did not fit. live is as for visible. more reports a full page: the log may hold
// more after it.
func (s *Server) page(ctx context.Context, id string, after, live int64) (set activitySet, more bool, err error) {
	set = activitySet{Activities: []json.RawMessage{}}
	if after >= 0 {
		set.Watermark = strconv.FormatInt(after, 10)
	}
	size, read, readBytes := setOverhead, 0, 0
	chunk := min(s.cfg.PageSize, pageChunk)
	for read < s.cfg.PageSize {
		recs, err := s.hub.Since(ctx, id, after, chunk)
		if err != nil {
			return activitySet{}, false, err
		}
		for _, rec := range recs {
			if s.visible(rec, live) {
				b := json.RawMessage(rec.Raw) // encoded once, when it was stored
				if b == nil {
					if b, err = activity.Marshal(rec.Activity); err != nil {
						return activitySet{}, false, err
					}
				}
				if len(set.Activities) > 0 && size+len(b)+1 > s.cfg.MaxPageBytes {
					return set, true, nil // the rest comes from this page's watermark
				}
				set.Activities = append(set.Activities, b)
				size += len(b) + 1
				readBytes += len(b)
			}
			after = rec.Seq
			set.Watermark = strconv.FormatInt(rec.Seq, 10)
			read++
		}
		if len(recs) < chunk {
			return set, false, nil
		}
		// the next chunk: as many as the budget left seems to hold, judging by those read
		chunk = s.cfg.PageSize - read
		if readBytes > 0 {
			chunk = min(chunk, max((s.cfg.MaxPageBytes-size)/(readBytes/len(set.Activities)+1)+1, 1))
		}
	}
	return set, true, nil
}

// getActivities: GET /conversations/{id}/activities?watermark= — polling.
func (s *Server) getActivities(r *http.Request) (int, any, *apiError) {
	id := r.PathValue("id")
	if _, e := s.authorize(r, id); e != nil {
		return 0, nil, e
	}
	after, ok := parseWatermark(r.URL.Query().Get("watermark"))
	if !ok {
		return 0, nil, errBadArgument("the watermark is not one this server issued")
	}
	if _, err := s.hub.Conversation(r.Context(), id); err != nil {
		return 0, nil, errFromBridge(err)
	}
	set, _, err := s.page(r.Context(), id, after, noLive)
	if err != nil {
		return 0, nil, errFromBridge(err)
	}
	return http.StatusOK, set, nil
}

// postActivity: POST /conversations/{id}/activities — one activity from the client.
func (s *Server) postActivity(r *http.Request) (int, any, *apiError) {
	id := r.PathValue("id")
	p, e := s.authorize(r, id)
	if e != nil {
		return 0, nil, e
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxActivityBytes+1))
	if err != nil {
		return 0, nil, errBadArgument("cannot read the body")
	}
	if len(body) > maxActivityBytes {
		return 0, nil, errTooLarge("the activity is over the limit of 256K characters")
	}
	a, e := decodeActivity(body)
	if e != nil {
		return 0, nil, e
	}
	return s.ingest(r, id, p, a)
}

// decodeActivity parses and checks an activity from a client.
func decodeActivity(body []byte) (*activity.Activity, *apiError) {
	if err := activity.CheckSize(body); err != nil {
		return nil, errTooLarge(err.Error())
	}
	if err := activity.CheckUTF8(body); err != nil {
		return nil, errBadArgument(err.Error())
	}
	a, err := activity.Decode(body)
	if err != nil {
		return nil, errBadArgument(err.Error())
	}
	if err := a.Validate(); err != nil {
		var ve *activity.ValidationError
		if errors.As(err, &ve) && ve.Code == activity.CodeMissingProperty {
			return nil, &apiError{Status: http.StatusBadRequest, Code: CodeMissingProperty, Message: err.Error()}
		}
		return nil, errBadArgument(err.Error())
	}
	return a, nil
}

// ingest stamps a client activity with what the channel owns and hands it to the Hub. It answers
// once the bot has (directline.md §1: the status reflects the bot's).
func (s *Server) ingest(r *http.Request, id string, p principal, a *activity.Activity) (int, any, *apiError) {
	if !s.allow(id) {
		return 0, nil, errThrottled()
	}
	if e := s.stamp(id, p, a); e != nil {
		return 0, nil, e
	}
	return s.handOver(r, id, a)
}

// stamp sets on a client activity what the channel owns.
func (s *Server) stamp(id string, p principal, a *activity.Activity) *apiError {
	if p.user != "" { // a user bound into the token overrides from.id [AUTH]
		if a.From == nil {
			a.From = &activity.ChannelAccount{}
		}
		a.From.ID = p.user
	}
	if a.From == nil || a.From.ID == "" {
		return &apiError{Status: http.StatusBadRequest, Code: CodeMissingProperty, Message: "Missing from.id"}
	}
	a.ID = ""                               // the channel assigns ids (A2030)
	a.Timestamp = activity.NewTime(s.now()) // and timestamps, in UTC (A2040, A2043)
	a.ChannelID = ChannelName
	a.ServiceURL = s.cfg.PublicURL + "/"
	a.Conversation = &activity.ConversationAccount{ID: id}
	a.CallerID = "" // not a wire field (A2250)
	return nil
}

// handOver hands a stamped activity to the Hub and answers with its id.
func (s *Server) handOver(r *http.Request, id string, a *activity.Activity) (int, any, *apiError) {
	leg := bridge.Leg{Channel: ChannelName, ConversationID: id}
	if a.Type == activity.TypeInvoke {
		return s.handOverInvoke(r, leg, a)
	}
	start := time.Now()
	aid, err := s.hub.Receive(r.Context(), leg, a, clientKey(a))
	if err != nil && aid != "" && !s.botFailed(r.Context(), id, err) {
		// A contact center that failed the first attempt is not the bot failing the customer:
		// the activity is in the log and the outbox goes on delivering it (or records why not).
		s.log.Warn().Err(err).Str("conv_id", id).Str("activity_id", aid).Msg("activity recorded; delivery to the contact center pending")
		return http.StatusOK, map[string]string{"id": aid}, nil
	}
	if err != nil {
		e := errFromBridge(err)
		s.log.Warn().Err(err).Str("conv_id", id).Str("activity_id", aid).Int("status", e.Status).Msg("post activity failed")
		return 0, nil, e
	}
	s.log.Debug().Str("conv_id", id).Str("activity_id", aid).Dur("took", time.Since(start)).Msg("activity posted")
	return http.StatusOK, map[string]string{"id": aid}, nil
}

// botFailed reports whether err is a failed delivery to the conversation's bot, which the POST
// answers with 502 or 504 as Azure's Direct Line does; a failed delivery to another leg (a
// contact center's) is not reported to the customer's client.
func (s *Server) botFailed(ctx context.Context, convID string, err error) bool {
	var de *bridge.DeliveryError
	if !errors.As(err, &de) {
		return true // not a delivery failure: errFromBridge answers it
	}
	c, cerr := s.hub.Conversation(ctx, convID)
	return cerr != nil || c.Bot.IsZero() || de.Leg == c.Bot.Key()
}

// clientKey is the idempotency key of a client's activity: its clientActivityID (Web Chat sets
// one on every post), so that a POST the client sends again is recorded once.
func clientKey(a *activity.Activity) string {
	if id := a.ClientActivityID(); id != "" {
		return "client:" + a.From.ID + ":" + id
	}
	return ""
}

// handOverInvoke hands a client's invoke (signin/tokenExchange, signin/verifyState: signin.md
// §2c) to the Hub and answers once the bot has: 200 with the invoke's id when the bot's invoke
// response is a 2xx, 502 otherwise — a refusal (the bot's 412 to a token it cannot exchange),
// an error, or no answer within the bot timeout — as Azure's Direct Line does (WebChat#4735).
// Direct Line clients read any 5xx as "retry" and then show the OAuthCard (DLJS
// catchPostError), so the client needs no more; the bot's answer body does not reach it.
//
// The answer is read from the log (bridge.Hub.Invoke), never from this process's memory, so a
// POST taken by one instance is answered with what another instance's delivery recorded.
func (s *Server) handOverInvoke(r *http.Request, leg bridge.Leg, a *activity.Activity) (int, any, *apiError) {
	name := a.Name
	aid, resp, err := s.hub.Invoke(r.Context(), leg, a, clientKey(a))
	log := s.log.With().Str("conv_id", leg.ConversationID).Str("activity_id", aid).Str("invoke", name).Logger()
	switch {
	case aid == "":
		e := errFromBridge(err)
		log.Warn().Err(err).Int("status", e.Status).Msg("invoke not taken")
		return 0, nil, e
	case err != nil:
		log.Info().Err(err).Msg("invoke: no answer from the bot")
		if errors.Is(err, bridge.ErrNoInvokeResponse) {
			return 0, nil, &apiError{Status: http.StatusBadGateway, Code: CodeBotError, Message: "Failed to send activity: bot did not answer the invoke"}
		}
		e := errFromBridge(err)
		e.Status = http.StatusBadGateway // an invoke without an answer fails as a refused one does
		return 0, nil, e
	case !resp.OK():
		log.Info().Int("bot_status", resp.Status).Msg("invoke refused by the bot")
		return 0, nil, &apiError{Status: http.StatusBadGateway, Code: CodeBotRejectedActivity, Message: "Failed to send activity: bot returned an error", BotStatus: resp.Status}
	}
	log.Debug().Int("bot_status", resp.Status).Msg("invoke answered")
	return http.StatusOK, map[string]string{"id": aid}, nil
}
