package botframework

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Body limits of the Connector API. An activity is further limited to
// activity.MaxActivityChars characters (256K).
const (
	maxActivityBody = 1 << 20 // one activity
	maxHistoryBody  = 4 << 20 // a transcript of activities
	// recordTimeout bounds recording (and relaying onward) what the bot posted, once accepted:
	// it is done even if the bot hangs up.
	recordTimeout = 30 * time.Second
)

// resourceResponse is the Connector's ResourceResponse.
type resourceResponse struct {
	ID string `json:"id"`
}

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newAPIError(http.StatusRequestEntityTooLarge, CodeMessageSizeTooBig, "the body is over "+strconv.FormatInt(limit, 10)+" bytes")
		}
		return nil, newAPIError(http.StatusBadRequest, CodeBadSyntax, "cannot read the body")
	}
	return b, nil
}

// acceptedFromBot are the activity types the Connector API takes from bots; others are refused
// (A2013: a channel should reject unknown types). invokeResponse is an HTTP answer, not an
// activity to post.
var acceptedFromBot = map[string]bool{
	activity.TypeMessage: true, activity.TypeConversationUpdate: true, activity.TypeContactRelationUpdate: true,
	activity.TypeInstallationUpdate: true, activity.TypeEndOfConversation: true, activity.TypeEvent: true,
	activity.TypeInvoke: true, activity.TypeMessageUpdate: true, activity.TypeMessageDelete: true,
	activity.TypeMessageReaction: true, activity.TypeSuggestion: true, activity.TypeTrace: true,
	activity.TypeTyping: true, activity.TypeHandoff: true, activity.TypeCommand: true,
	activity.TypeCommandResult: true, activity.TypeDelay: true,
}

// decodeFromBot checks and decodes one activity the bot sent: size (256K characters), JSON,
// required fields, type. The channel-assigned fields the bot may not set are cleared
// (botframework.md §7.1: id, timestamp, serviceUrl, callerId). Errors are *apiError.
func (c *Channel) decodeFromBot(raw []byte) (*activity.Activity, error) {
	return decodeBotActivity(raw, false)
}

func decodeBotActivity(raw []byte, keepTimestamp bool) (*activity.Activity, error) {
	if err := activity.CheckSize(raw); err != nil {
		return nil, validationError(err)
	}
	if err := activity.CheckUTF8(raw); err != nil {
		return nil, validationError(err)
	}
	a, err := activity.Decode(raw)
	if err != nil {
		return nil, validationError(err)
	}
	if err := a.Validate(); err != nil {
		return nil, validationError(err)
	}
	if !acceptedFromBot[a.Type] {
		return nil, newAPIError(http.StatusBadRequest, CodeBadArgument, "activity type "+strconv.Quote(a.Type)+" is not accepted from bots (rule A2013)")
	}
	a.ID, a.ServiceURL, a.CallerID = "", "", ""
	for _, k := range []string{"id", "serviceUrl", "callerId"} {
		delete(a.Extra, k)
	}
	if !keepTimestamp {
		a.Timestamp = activity.Time{}
		delete(a.Extra, "timestamp")
	}
	return a, nil
}

// dropFromBot reports whether an accepted activity is dropped rather than recorded: handoff
// (A6200: not for the wire) and delay (SDK-internal).
func dropFromBot(a *activity.Activity) bool {
	return a.Type == activity.TypeHandoff || a.Type == activity.TypeDelay
}

// botLeg is the leg the bot's calls arrive on.
func botLeg(convID string) bridge.Leg { return bridge.Leg{Channel: Name, ConversationID: convID} }

// conversation returns the conversation whose bot leg is convID, or a 404 *apiError.
func (c *Channel) conversation(ctx context.Context, convID string) (*bridge.Conversation, error) {
	conv, err := c.hub.ConversationByLeg(ctx, Name, convID)
	if errors.Is(err, bridge.ErrUnknownConversation) {
		return nil, newAPIError(http.StatusNotFound, CodeConversationNotFound, "unknown conversation")
	}
	if err != nil {
		return nil, err
	}
	return conv, nil
}

// record hands an activity of the bot's to the Hub and maps its errors. A failed onward
// delivery is not the bot's failure: the activity is in the log and its id is returned.
func (c *Channel) record(r *http.Request, convID string, a *activity.Activity) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), recordTimeout)
	defer cancel()
	if err := c.fromBot(ctx, convID, a); err != nil {
		return "", err
	}
	id, err := c.hub.Receive(ctx, botLeg(convID), a, "")
	var de *bridge.DeliveryError
	switch {
	case err == nil:
	case errors.As(err, &de) && id != "":
		c.log.Warn().Err(err).Str("conv_id", convID).Str("activity_id", id).Msg("bot activity recorded; onward delivery failed")
	case errors.Is(err, bridge.ErrUnknownConversation):
		return "", newAPIError(http.StatusNotFound, CodeConversationNotFound, "unknown conversation")
	case errors.Is(err, bridge.ErrConversationEnded):
		return "", newAPIError(http.StatusForbidden, CodeBadArgument, "the conversation has ended")
	default:
		c.log.Error().Err(err).Str("conv_id", convID).Msg("record bot activity")
		return "", err
	}
	c.log.Debug().Str("conv_id", convID).Str("activity_id", id).Str("type", a.Type).Str("peer", r.RemoteAddr).Msg("bot activity recorded")
	return id, nil
}

// postActivity serves SendToConversation (POST …/activities) and ReplyToActivity
// (POST …/activities/{activityId}, recorded with replyToId = activityId; the Hub drops a
// replyToId that is not in the log, so unknown ones degrade to SendToConversation).
func (c *Channel) postActivity(w http.ResponseWriter, r *http.Request, rt route) {
	body, err := readBody(w, r, maxActivityBody)
	if err != nil {
		writeError(w, err)
		return
	}
	a, err := c.decodeFromBot(body)
	if err != nil {
		writeError(w, err)
		return
	}
	if rt.activityID != "" {
		a.ReplyToID = rt.activityID
	}
	if dropFromBot(a) {
		if _, err := c.conversation(r.Context(), rt.convID); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resourceResponse{})
		return
	}
	setConversationID(a, rt.convID)
	id, err := c.record(r, rt.convID, a)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resourceResponse{ID: id})
}

// updateActivity serves UpdateActivity (PUT …/activities/{activityId}): the new content is
// recorded as a messageUpdate activity whose replyToId is the updated activity's id (the log
// gives every record its own id), which is how the customer side learns of it.
func (c *Channel) updateActivity(w http.ResponseWriter, r *http.Request, rt route) {
	conv, err := c.conversation(r.Context(), rt.convID)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r, maxActivityBody)
	if err != nil {
		writeError(w, err)
		return
	}
	a, err := c.decodeFromBot(body)
	if err != nil {
		writeError(w, err)
		return
	}
	if !c.inLog(r.Context(), conv.ID, rt.activityID) {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "unknown activity"))
		return
	}
	a.Type = activity.TypeMessageUpdate
	a.ReplyToID = rt.activityID
	setConversationID(a, rt.convID)
	if _, err := c.record(r, rt.convID, a); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resourceResponse{ID: rt.activityID})
}

// deleteActivity serves DeleteActivity (DELETE …/activities/{activityId}): a messageDelete
// activity with replyToId = the deleted activity's id is recorded.
func (c *Channel) deleteActivity(w http.ResponseWriter, r *http.Request, rt route) {
	conv, err := c.conversation(r.Context(), rt.convID)
	if err != nil {
		writeError(w, err)
		return
	}
	if !c.inLog(r.Context(), conv.ID, rt.activityID) {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "unknown activity"))
		return
	}
	a := &activity.Activity{
		Type:         activity.TypeMessageDelete,
		ReplyToID:    rt.activityID,
		ChannelID:    c.cfg.ChannelID,
		From:         accountPtr(conv.Bot.Bot),
		Conversation: &activity.ConversationAccount{ID: rt.convID},
	}
	if _, err := c.record(r, rt.convID, a); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// postHistory serves SendConversationHistory (POST …/activities/history): the transcript's
// activities are checked first, all of them, then recorded in order with the timestamps the bot
// gave (the client renders history by them; SWG). Their ids are the log's. The answer's id is
// the last one recorded.
func (c *Channel) postHistory(w http.ResponseWriter, r *http.Request, rt route) {
	if _, err := c.conversation(r.Context(), rt.convID); err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r, maxHistoryBody)
	if err != nil {
		writeError(w, err)
		return
	}
	var transcript struct {
		Activities []json.RawMessage `json:"activities"`
	}
	if err := json.Unmarshal(body, &transcript); err != nil {
		writeError(w, newAPIError(http.StatusBadRequest, CodeBadSyntax, "the body is not a transcript {\"activities\":[…]}"))
		return
	}
	acts := make([]*activity.Activity, 0, len(transcript.Activities))
	for i, raw := range transcript.Activities {
		a, err := decodeBotActivity(raw, true)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) {
				ae.Message = "activities[" + strconv.Itoa(i) + "]: " + ae.Message
			}
			writeError(w, err)
			return
		}
		if !dropFromBot(a) {
			setConversationID(a, rt.convID)
			acts = append(acts, a)
		}
	}
	var last string
	for _, a := range acts {
		id, err := c.record(r, rt.convID, a)
		if err != nil {
			writeError(w, err)
			return
		}
		last = id
	}
	writeJSON(w, http.StatusOK, resourceResponse{ID: last})
}

// createConversation serves CreateConversation (POST /v3/conversations) with 501: conversations
// start on the customer's side (a widget or a contact center), and the bridge has no customer
// to open a proactive conversation with.
func (c *Channel) createConversation(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxActivityBody)
	if err != nil {
		writeError(w, err)
		return
	}
	if !json.Valid(body) {
		writeError(w, newAPIError(http.StatusBadRequest, CodeBadSyntax, "the body is not JSON ConversationParameters"))
		return
	}
	writeError(w, newAPIError(http.StatusNotImplemented, CodeNotImplemented,
		"this channel does not create conversations: they start on the customer's side"))
}

// conversationsResult is the Connector's ConversationsResult.
type conversationsResult struct {
	ContinuationToken string            `json:"continuationToken,omitempty"`
	Conversations     []json.RawMessage `json:"conversations"`
}

// getConversations serves GetConversations (GET /v3/conversations) with an empty page: the
// store has no enumeration of conversations, and channels other than Teams do not list them
// either.
func (c *Channel) getConversations(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, conversationsResult{Conversations: []json.RawMessage{}})
}

// setConversationID makes the recorded activity name the conversation it was posted to.
func setConversationID(a *activity.Activity, convID string) {
	if a.Conversation == nil {
		a.Conversation = &activity.ConversationAccount{}
	}
	a.Conversation.ID = convID
}

// inLog reports whether id names an activity in the conversation's log: the log's ids are
// bridge.FormatActivityID(conv, seq).
func (c *Channel) inLog(ctx context.Context, convID, id string) bool {
	rest, ok := strings.CutPrefix(id, convID+"|")
	if !ok || rest == "" {
		return false
	}
	seq, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || seq < 0 {
		return false
	}
	last, err := c.hub.Last(ctx, convID)
	return err == nil && seq <= last
}
