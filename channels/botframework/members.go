package botframework

import (
	"context"
	"net/http"
	"strconv"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/bridge"
)

// Paging of GetConversationPagedMembers.
const (
	defaultPageSize = 200
	maxPageSize     = 500
	// userScan bounds how much of the log is read to find the user when the leg does not know it.
	userScan = 50
)

// members returns the conversation's members as the bot knows them: the user, then the bot.
func (c *Channel) members(ctx context.Context, conv *bridge.Conversation) []activity.ChannelAccount {
	user := conv.Bot.User
	if user.ID == "" {
		user = conv.Customer.User
	}
	if user.ID == "" {
		// The customer's channel did not know the user at start: the first activity tells.
		if recs, err := c.hub.Since(ctx, conv.ID, -1, userScan); err == nil {
			for _, rec := range recs {
				if rec.From == bridge.RoleCustomer && rec.Activity.From != nil && rec.Activity.From.ID != "" {
					user = *rec.Activity.From
					break
				}
			}
		}
	}
	bot := conv.Bot.Bot
	if bot.ID == "" {
		bot = c.hub.Bot()
	}
	var out []activity.ChannelAccount
	for _, m := range []activity.ChannelAccount{user, bot} {
		if m.ID != "" {
			out = append(out, activity.ChannelAccount{ID: m.ID, Name: m.Name, AADObjectID: m.AADObjectID})
		}
	}
	return out
}

// getMembers serves GetConversationMembers and GetActivityMembers.
func (c *Channel) getMembers(w http.ResponseWriter, r *http.Request, rt route) {
	conv, err := c.conversation(r.Context(), rt.convID)
	if err != nil {
		writeError(w, err)
		return
	}
	if rt.op == opActivityMembers && !c.inLog(r.Context(), conv.ID, rt.activityID) {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "unknown activity"))
		return
	}
	members := c.members(r.Context(), conv)
	if members == nil {
		members = []activity.ChannelAccount{}
	}
	writeJSON(w, http.StatusOK, members)
}

// member finds one member by id, or answers 404.
func (c *Channel) member(w http.ResponseWriter, r *http.Request, rt route) (*bridge.Conversation, *activity.ChannelAccount) {
	conv, err := c.conversation(r.Context(), rt.convID)
	if err != nil {
		writeError(w, err)
		return nil, nil
	}
	for _, m := range c.members(r.Context(), conv) {
		if m.ID == rt.memberID {
			return conv, &m
		}
	}
	writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "unknown member"))
	return nil, nil
}

// getMember serves GetConversationMember.
func (c *Channel) getMember(w http.ResponseWriter, r *http.Request, rt route) {
	if _, m := c.member(w, r, rt); m != nil {
		writeJSON(w, http.StatusOK, m)
	}
}

// deleteMember serves DeleteConversationMember: a conversationUpdate with membersRemoved is
// recorded, so that the customer side learns of it.
func (c *Channel) deleteMember(w http.ResponseWriter, r *http.Request, rt route) {
	conv, m := c.member(w, r, rt)
	if m == nil {
		return
	}
	a := &activity.Activity{
		Type:           activity.TypeConversationUpdate,
		ChannelID:      c.cfg.ChannelID,
		From:           accountPtr(conv.Bot.Bot),
		Conversation:   &activity.ConversationAccount{ID: rt.convID},
		MembersRemoved: []activity.ChannelAccount{*m},
	}
	if _, err := c.record(r, rt.convID, a); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// pagedMembers is the Connector's PagedMembersResult.
type pagedMembers struct {
	ContinuationToken string                    `json:"continuationToken,omitempty"`
	Members           []activity.ChannelAccount `json:"members"`
}

// getPagedMembers serves GetConversationPagedMembers (?pageSize=&continuationToken=); the
// continuation token is the offset of the next page.
func (c *Channel) getPagedMembers(w http.ResponseWriter, r *http.Request, rt route) {
	conv, err := c.conversation(r.Context(), rt.convID)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	size := defaultPageSize
	if s := q.Get("pageSize"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, newAPIError(http.StatusBadRequest, CodeBadArgument, "pageSize must be a positive integer"))
			return
		}
		size = min(n, maxPageSize)
	}
	offset := 0
	if s := q.Get("continuationToken"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, newAPIError(http.StatusBadRequest, CodeBadArgument, "invalid continuationToken"))
			return
		}
		offset = n
	}
	all := c.members(r.Context(), conv)
	page := pagedMembers{Members: []activity.ChannelAccount{}}
	if offset < len(all) {
		end := min(offset+size, len(all))
		page.Members = append(page.Members, all[offset:end]...)
		if end < len(all) {
			page.ContinuationToken = strconv.Itoa(end)
		}
	}
	writeJSON(w, http.StatusOK, page)
}
