package botframework

import (
	"net/http"
	"net/url"
	"strings"
)

// Connector operations under /v3/conversations/{cid}/… (botframework.md §2).
type operation int

const (
	opUnknown operation = iota
	opSendToConversation
	opHistory
	opActivity // ReplyToActivity (POST), UpdateActivity (PUT), DeleteActivity (DELETE)
	opActivityMembers
	opMembers
	opMember
	opPagedMembers
	opAttachments
)

// route is a parsed per-conversation Connector path.
type route struct {
	op         operation
	convID     string
	activityID string
	memberID   string
}

// rawPath returns the request's path exactly as the client sent it. r.URL.EscapedPath is not
// enough: when the raw path holds a character Go would have escaped (agents-hosting sends "|"
// as is), Go re-escapes the decoded path and loses which "/" were sent as "%2F".
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if p == "" || p[0] != '/' {
		// Absolute-form request targets and requests built in-process (tests).
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

// parseConversationPath parses the escaped path after "/v3/conversations/". The conversation id
// may itself contain "/": botbuilder escapes it as %2F, agents-hosting sends it as is
// (botframework.md §2), so the operation is recognised from the end of the path, where the
// bridge's own (slash-free) activity ids and member ids are. "/activities/history" is matched
// before "/activities/{activityId}".
func parseConversationPath(escaped string) (route, bool) {
	segs := strings.Split(escaped, "/")
	n := len(segs)
	at := func(i int) string { // segs counted from the end: at(1) is the last
		if i > n {
			return ""
		}
		return segs[n-i]
	}
	var rt route
	var tail int // how many trailing segments belong to the operation
	switch {
	case n >= 3 && at(2) == "activities" && at(1) == "history":
		rt.op, tail = opHistory, 2
	case n >= 4 && at(3) == "activities" && at(1) == "members":
		rt.op, tail = opActivityMembers, 3
		rt.activityID = at(2)
	case n >= 2 && at(1) == "activities":
		rt.op, tail = opSendToConversation, 1
	case n >= 3 && at(2) == "activities":
		rt.op, tail = opActivity, 2
		rt.activityID = at(1)
	case n >= 2 && at(1) == "members":
		rt.op, tail = opMembers, 1
	case n >= 3 && at(2) == "members":
		rt.op, tail = opMember, 2
		rt.memberID = at(1)
	case n >= 2 && at(1) == "pagedmembers":
		rt.op, tail = opPagedMembers, 1
	case n >= 2 && at(1) == "attachments":
		rt.op, tail = opAttachments, 1
	default:
		return route{}, false
	}
	var err error
	if rt.convID, err = url.PathUnescape(strings.Join(segs[:n-tail], "/")); err != nil || rt.convID == "" {
		return route{}, false
	}
	if rt.activityID, err = url.PathUnescape(rt.activityID); err != nil {
		return route{}, false
	}
	if rt.memberID, err = url.PathUnescape(rt.memberID); err != nil {
		return route{}, false
	}
	if (rt.op == opActivity || rt.op == opActivityMembers) && rt.activityID == "" {
		return route{}, false
	}
	if rt.op == opMember && rt.memberID == "" {
		return route{}, false
	}
	return rt, true
}

// serveConversation dispatches the per-conversation Connector routes.
func (c *Channel) serveConversation(w http.ResponseWriter, r *http.Request) {
	const prefix = "/v3/conversations/"
	p := rawPath(r)
	if !strings.HasPrefix(p, prefix) {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "no such route"))
		return
	}
	rt, ok := parseConversationPath(p[len(prefix):])
	if !ok {
		writeError(w, newAPIError(http.StatusNotFound, CodeNotFound, "no such route"))
		return
	}
	var h func(http.ResponseWriter, *http.Request, route)
	switch m := r.Method; {
	case rt.op == opSendToConversation && m == http.MethodPost:
		h = c.postActivity
	case rt.op == opActivity && m == http.MethodPost:
		h = c.postActivity
	case rt.op == opActivity && m == http.MethodPut:
		h = c.updateActivity
	case rt.op == opActivity && m == http.MethodDelete:
		h = c.deleteActivity
	case rt.op == opHistory && m == http.MethodPost:
		h = c.postHistory
	case rt.op == opMembers && m == http.MethodGet, rt.op == opActivityMembers && m == http.MethodGet:
		h = c.getMembers
	case rt.op == opMember && m == http.MethodGet:
		h = c.getMember
	case rt.op == opMember && m == http.MethodDelete:
		h = c.deleteMember
	case rt.op == opPagedMembers && m == http.MethodGet:
		h = c.getPagedMembers
	case rt.op == opAttachments && m == http.MethodPost:
		h = c.uploadAttachment
	default:
		w.Header().Set("Allow", allowed(rt.op))
		writeError(w, newAPIError(http.StatusMethodNotAllowed, CodeBadArgument, "method not allowed on this route"))
		return
	}
	h(w, r, rt)
}

// allowed lists the methods an operation takes.
func allowed(op operation) string {
	switch op {
	case opActivity:
		return "POST, PUT, DELETE"
	case opMember:
		return "GET, DELETE"
	case opMembers, opActivityMembers, opPagedMembers:
		return "GET"
	}
	return "POST"
}
