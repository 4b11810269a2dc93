package conformance

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/conformance/runner"
)

// stripEscalationContext breaks the bridge as a relay that forwards a bot's handoff command but
// not its payload would: on the bot's Connector API calls (POST /v3/conversations/{id}/activities
// and …/activities/{replyToId}), it removes the value of a handoff.initiate event and the
// context inside an Omnichannel command (channelData.tags, a JSON string). Everything else
// passes untouched, so the bridge still escalates — without the context.
func stripEscalationContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if r.Method == http.MethodPost && strings.HasPrefix(p, "/v3/conversations/") && strings.Contains(p, "/activities") &&
			!strings.HasSuffix(p, "/activities/history") {
			raw, err := io.ReadAll(r.Body)
			var act map[string]json.RawMessage
			if err == nil && json.Unmarshal(raw, &act) == nil && stripContext(act) {
				raw, _ = json.Marshal(act)
			}
			r.Body = io.NopCloser(bytes.NewReader(raw))
			r.ContentLength = int64(len(raw))
		}
		next.ServeHTTP(w, r)
	})
}

// stripContext removes an escalation's context from act and reports whether it did.
func stripContext(act map[string]json.RawMessage) bool {
	var typ, name string
	_ = json.Unmarshal(act["type"], &typ)
	_ = json.Unmarshal(act["name"], &name)
	if typ == "event" && name == "handoff.initiate" {
		_, had := act["value"]
		delete(act, "value")
		return had
	}
	var cd map[string]json.RawMessage
	if json.Unmarshal(act["channelData"], &cd) != nil {
		return false
	}
	var tags string
	var cmd map[string]json.RawMessage
	if json.Unmarshal(cd["tags"], &tags) != nil || json.Unmarshal([]byte(tags), &cmd) != nil {
		return false
	}
	if _, had := cmd["context"]; !had {
		return false
	}
	delete(cmd, "context")
	b, _ := json.Marshal(cmd)
	cd["tags"], _ = json.Marshal(string(b))
	act["channelData"], _ = json.Marshal(cd)
	return true
}

func TestStripContext(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"handoff.initiate", `{"type":"event","name":"handoff.initiate","value":{"Context":{"a":1}},"text":"x"}`,
			`{"name":"handoff.initiate","text":"x","type":"event"}`},
		{"Escalate tags", `{"type":"message","text":"Escalating...","channelData":{"tags":"{\"type\":\"Escalate\",\"context\":{\"EscalateToAgent\":1}}","x":1}}`,
			`{"channelData":{"tags":"{\"type\":\"Escalate\"}","x":1},"text":"Escalating...","type":"message"}`},
		{"a plain message", `{"type":"message","text":"hi"}`, ""},
		{"label tags", `{"type":"message","channelData":{"tags":["ChannelId-lcw"]}}`, ""},
		{"another event", `{"type":"event","name":"handoff.status","value":{"state":"accepted"}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var act map[string]json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(tc.in), &act))
			changed := stripContext(act)
			require.Equal(t, tc.want != "", changed)
			if changed {
				got, err := json.Marshal(act)
				require.NoError(t, err)
				require.JSONEq(t, tc.want, string(got))
			}
		})
	}

	// Through the handler: only the bot's Connector API calls are touched.
	var seen []string
	h := stripEscalationContext(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		require.Equal(t, int64(len(b)), r.ContentLength)
		seen = append(seen, string(b))
	}))
	body := `{"type":"event","name":"handoff.initiate","value":{"a":1}}`
	for _, p := range []string{"/v3/conversations/c%7C1/activities/c%7C1%7C0000000", "/v3/directline/conversations/c/activities", "/v3/conversations/c/activities/history"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, p, strings.NewReader(body)))
	}
	require.JSONEq(t, `{"type":"event","name":"handoff.initiate"}`, seen[0])
	require.Equal(t, body, seen[1], "the customer's Direct Line posts pass untouched")
	require.Equal(t, body, seen[2], "conversation history passes untouched")
}

// TestSuiteCatchesEscalationWithoutContext runs the escalation scenarios against a bridge that
// receives the bot's escalations without their context: each scenario whose check rests on the
// context fails, naming exactly the mapping rows the missing context breaks; the others (ends
// that carry no context) still pass. Known-bug scenarios fail anyway and are left out.
func TestSuiteCatchesEscalationWithoutContext(t *testing.T) {
	t.Parallel()
	var esc []*runner.Scenario
	for _, s := range loadScenarios(t) {
		for _, id := range s.Requirements {
			if strings.HasPrefix(id, "ESC:") {
				esc = append(esc, s)
				break
			}
		}
	}
	// The requirements each scenario must fail, and only those.
	want := map[string][]string{
		"esc-healthbot":                 {"ESC:Routing.Vars@healthbot"}, // the note is the text: kept
		"esc-omnichannel-escalate":      {"ESC:Routing.Vars@omnichannel"},
		"esc-omnichannel-routing":       {"ESC:Routing.Vars@omnichannel"}, // the fallback queue, not Nurse
		"esc-botframework-eventfactory": {"ESC:Routing.Vars@botframework"},
		"esc-botframework-agent":        {"ESC:AgentNote@botframework", "ESC:Routing.Vars@botframework"}, // status and end still work
		"esc-botframework-flat-note":    {"ESC:AgentNote@botframework", "ESC:Routing.Vars@botframework"},
		"esc-botframework-customer":     {"ESC:Customer@botframework", "ESC:Links.CaseNumber@botframework"},
		"esc-copilot-sample":            {"ESC:AgentNote@copilot", "ESC:Reason.LastTopic@copilot", "ESC:Routing.Vars@copilot"},
		"esc-copilot-docs":              {"ESC:AgentNote@copilot", "ESC:Reason.LastTopic@copilot"},
		"esc-copilot-end":               {"ESC:End@copilot"}, // the close was in the value: it escalates instead
		"esc-context-types":             {"ESC:Routing.Vars@botframework"},
		"esc-context-types-healthbot":   {"ESC:Routing.Vars@healthbot"},
		"esc-copilot-arrays":            {"ESC:Routing.Vars@copilot"},
	}
	rep := runInProcess(t, esc, stripEscalationContext, time.Second, nil)
	ran := map[string]bool{}
	for _, res := range rep.Results {
		ran[res.Scenario] = true
		if res.KnownBug != "" {
			continue
		}
		reqs, affected := want[res.Scenario]
		if !affected {
			require.Equal(t, runner.Pass, res.Status, "%s carries no context: the fault leaves it alone: %s", res.Scenario, res.Reason)
			continue
		}
		require.Equal(t, runner.Fail, res.Status, "%s: the escalation without its context is caught", res.Scenario)
		require.False(t, res.Aborted, "%s: the failure is in what the parties saw, not an input step: %s", res.Scenario, res.Reason)
		failed := map[string]bool{}
		for _, f := range res.Failures {
			for _, id := range f.Requirements {
				failed[id] = true
			}
		}
		var got []string
		for id := range failed {
			got = append(got, id)
		}
		sort.Strings(got)
		require.Equal(t, reqs, got, "%s names the rows the missing context breaks: %s", res.Scenario, res.Reason)
		t.Logf("%s → %s", res.Scenario, res.Reason)
	}
	for name := range want {
		require.True(t, ran[name], "scenario %s exists", name)
	}
	rows := map[string]runner.Row{}
	for _, rw := range rep.Rows() {
		rows[rw.Requirement] = rw
	}
	for _, id := range []string{"ESC:Routing.Vars@healthbot", "ESC:Routing.Vars@omnichannel", "ESC:Routing.Vars@botframework", "ESC:Routing.Vars@copilot"} {
		require.Equal(t, runner.Fail, rows[id].Status, "the summary table fails %s: %+v", id, rows[id])
	}
}
