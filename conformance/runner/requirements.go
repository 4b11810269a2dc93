package runner

import (
	"sort"
	"strconv"
	"strings"
)

// Requirement is one thing a conformant target must do: an item of the Direct Line checklist
// (reference/directline.md, "What a conforming server must do": DL1 … DL12), a numbered rule of
// the Activity specification (A2005, A2030, …), or, for escalation scenarios, a row of the
// escalation mapping table (ESC:<row>@<dialect>, reference/escalation.md).
type Requirement struct {
	ID    string
	Title string
	// Optional requirements are reported unsupported, never failed, when a target lacks them.
	Optional bool
}

// requirements are the requirements the runner knows by id. Scenario files may name others;
// their title is then the text after the id on the scenario's requirement line.
var requirements = map[string]Requirement{
	"DL1":   {ID: "DL1", Title: "everything under /v3/directline; CORS preflight"},
	"DL2":   {ID: "DL2", Title: "Bearer secret or token; 401 missing, 403 TokenExpired, 404 unknown conversation"},
	"DL3":   {ID: "DL3", Title: "JWT tokens: generate, refresh (same conversation), expires_in"},
	"DL4":   {ID: "DL4", Title: "POST /conversations: 201 + conversation; 200 when started; conversationUpdate to the bot"},
	"DL5":   {ID: "DL5", Title: "absolute streamUrl; GET /conversations/{id}?watermark= gives a fresh one"},
	"DL6":   {ID: "DL6", Title: "websocket: ActivitySet frames, replay after the watermark, keep-alives"},
	"DL7":   {ID: "DL7", Title: "ids {conv}|%07d on one sequence; watermark string; empty or - = from the start"},
	"DL8":   {ID: "DL8", Title: "POST /activities: id, channel fields, channelData kept, echo, bot errors 502/504"},
	"DL9":   {ID: "DL9", Title: "GET /activities: ActivitySet after the watermark"},
	"DL10":  {ID: "DL10", Title: "upload: multipart, hosted files, contentUrl"},
	"DL11":  {ID: "DL11", Title: "bot replies on the Connector routes, replyToId kept, next id"},
	"DL12":  {ID: "DL12", Title: "optional: session id, 429 + Retry-After", Optional: true},
	"DLERR": {ID: "DLERR", Title: "every error is {\"error\":{\"code\",\"message\"}} with the documented status"},
	"A2005": {ID: "A2005", Title: "unknown fields survive"},

	// Sign-in as the channel sees it (reference/signin.md §2c, §6.8, §7).
	"SI1":   {ID: "SI1", Title: "invoke: the bot's 2xx invoke response makes the POST 200 {id}; any other or none, 502"},
	"SI2":   {ID: "SI2", Title: "OAuthCard and SigninCard reach the client intact, first in attachments"},
	"SI3":   {ID: "SI3", Title: "invokes and invoke responses never reach the client's GET or stream"},
	"A2030": {ID: "A2030", Title: "the channel assigns ids (unique per conversation)"},
	"A2043": {ID: "A2043", Title: "timestamps in UTC with Z; localTimestamp kept"},
	"A2302": {ID: "A2302", Title: "a bot-supplied serviceUrl is ignored"},

	// Escalation mapping rows (reference/escalation.md's table, activity/handoff/MAPPING.md),
	// as the agent leg observes them on the sandbox desk.
	"ESC:Routing.Vars@healthbot":        {ID: "ESC:Routing.Vars@healthbot", Title: "Health Bot: the Escalate tags' context reaches routing and the agent, typed"},
	"ESC:Routing.Vars@omnichannel":      {ID: "ESC:Routing.Vars@omnichannel", Title: "Omnichannel: the Escalate command's context reruns routing and reaches the agent"},
	"ESC:Routing.Vars@botframework":     {ID: "ESC:Routing.Vars@botframework", Title: "Bot Framework: handoff.initiate value (flat or Context) reaches routing and the agent, typed"},
	"ESC:Routing.Vars@copilot":          {ID: "ESC:Routing.Vars@copilot", Title: "Copilot: va_* and topic variables reach routing and the agent, arrays flattened"},
	"ESC:AgentNote@healthbot":           {ID: "ESC:AgentNote@healthbot", Title: "Health Bot: the command's text is the agent's note, never the customer's"},
	"ESC:AgentNote@omnichannel":         {ID: "ESC:AgentNote@omnichannel", Title: "Omnichannel: the Escalate text is the agent's note, never the customer's"},
	"ESC:AgentNote@botframework":        {ID: "ESC:AgentNote@botframework", Title: "Bot Framework: value.MessageToAgent is the agent's note"},
	"ESC:AgentNote@copilot":             {ID: "ESC:AgentNote@copilot", Title: "Copilot: va_AgentMessage is the agent's note"},
	"ESC:Reason.LastTopic@copilot":      {ID: "ESC:Reason.LastTopic@copilot", Title: "Copilot: va_LastTopic and va_LastPhrase(s) reach the agent"},
	"ESC:Transcript@healthbot":          {ID: "ESC:Transcript@healthbot", Title: "Health Bot: the agent sees the bot conversation"},
	"ESC:Transcript@botframework":       {ID: "ESC:Transcript@botframework", Title: "Bot Framework: the agent sees the conversation; the handoff event is in nobody's"},
	"ESC:Transcript@copilot":            {ID: "ESC:Transcript@copilot", Title: "Copilot: the agent sees the conversation; the handoff event is in nobody's"},
	"ESC:Customer@botframework":         {ID: "ESC:Customer@botframework", Title: "Bot Framework: the customer's Name, Email, Phone reach the agent"},
	"ESC:Links.CaseNumber@botframework": {ID: "ESC:Links.CaseNumber@botframework", Title: "Bot Framework: CaseNumber reaches the agent"},
	"ESC:Status@botframework":           {ID: "ESC:Status@botframework", Title: "Bot Framework: the bot hears handoff.status accepted when an agent accepts"},
	"ESC:End@botframework":              {ID: "ESC:End@botframework", Title: "Bot Framework: endOfConversation ends the conversation on every leg"},
	"ESC:End@omnichannel":               {ID: "ESC:End@omnichannel", Title: "Omnichannel: EndConversation ends it; the customer sees the end, not the command"},
	"ESC:End@copilot":                   {ID: "ESC:End@copilot", Title: "Copilot: CloseOmnichannelConversation ends instead of escalating"},
	"ESC:End@desk":                      {ID: "ESC:End@desk", Title: "contact center: the customer is told the agent ended, then sees the end"},
}

// LookupRequirement returns the known requirement with that id, if any.
func LookupRequirement(id string) (Requirement, bool) {
	r, ok := requirements[id]
	return r, ok
}

// requirementLess orders requirement ids: the Direct Line checklist by number, then Activity
// rules by number, then the rest by name.
func requirementLess(a, b string) bool {
	ka, na := requirementKey(a)
	kb, nb := requirementKey(b)
	if ka != kb {
		return ka < kb
	}
	if na != nb {
		return na < nb
	}
	return a < b
}

func requirementKey(id string) (group, n int) {
	switch {
	case strings.HasPrefix(id, "DL"):
		if v, err := strconv.Atoi(id[2:]); err == nil {
			return 0, v
		}
	case strings.HasPrefix(id, "A"):
		if v, err := strconv.Atoi(id[1:]); err == nil {
			return 1, v
		}
	}
	return 2, 0
}

func sortRequirements(ids []string) {
	sort.Slice(ids, func(i, j int) bool { return requirementLess(ids[i], ids[j]) })
}
