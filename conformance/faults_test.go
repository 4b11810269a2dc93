package conformance

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/conformance/runner"
)

// The faults below break a healthy bridge from the outside, as middleware around its handler,
// so that production code has no fault hooks. Each one imitates a real way a Direct Line server
// goes wrong; TestSuiteCatchesBrokenBridge checks that the suite reports it against the right
// requirement.

// isActivities reports whether r is a client call on a conversation's activities.
func isActivities(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/v3/directline/conversations/") && strings.HasSuffix(r.URL.Path, "/activities")
}

// rewriteActivitySets passes GET /activities answers through edit.
func rewriteActivitySets(edit func(acts []map[string]any) []map[string]any) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !isActivities(r) {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			var set struct {
				Activities []map[string]any `json:"activities"`
				Watermark  string           `json:"watermark,omitempty"`
			}
			if rec.Code == http.StatusOK && json.Unmarshal(body, &set) == nil {
				set.Activities = edit(set.Activities)
				if set.Activities == nil {
					set.Activities = []map[string]any{}
				}
				body, _ = json.Marshal(set)
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
}

// dropEcho hides the customer's own activities from GET /activities: only the bot's remain.
var dropEcho = rewriteActivitySets(func(acts []map[string]any) []map[string]any {
	var out []map[string]any
	for _, a := range acts {
		if from, _ := a["from"].(map[string]any); from != nil && from["id"] == "bot" {
			out = append(out, a)
		}
	}
	return out
})

// reuseID gives every activity of a GET /activities answer the id of the first one.
var reuseID = rewriteActivitySets(func(acts []map[string]any) []map[string]any {
	for _, a := range acts {
		a["id"] = acts[0]["id"]
	}
	return acts
})

// ignoreWatermark answers GET /activities as if no watermark had been given.
func ignoreWatermark(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && isActivities(r) {
			q := r.URL.Query()
			q.Del("watermark")
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	})
}

// knownFields are the Activity members of the schema (reference/botframework.md §1.1).
var knownFields = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`type id timestamp localTimestamp localTimezone serviceUrl channelId from
		recipient conversation textFormat attachmentLayout membersAdded membersRemoved reactionsAdded
		reactionsRemoved topicName historyDisclosed locale text speak inputHint summary suggestedActions
		attachments entities channelData action replyToId label valueType value name relatesTo code
		expiration importance deliveryMode listenFor textHighlights semanticAction callerId`) {
		knownFields[f] = true
	}
}

// loseUnknownFields drops the members of a posted activity that the schema does not define, as
// a relay with a closed activity type does.
func loseUnknownFields(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && isActivities(r) {
			raw, err := io.ReadAll(r.Body)
			var act map[string]json.RawMessage
			if err == nil && json.Unmarshal(raw, &act) == nil {
				for k := range act {
					if !knownFields[k] {
						delete(act, k)
					}
				}
				raw, _ = json.Marshal(act)
			}
			r.Body = io.NopCloser(bytes.NewReader(raw))
			r.ContentLength = int64(len(raw))
		}
		next.ServeHTTP(w, r)
	})
}

// TestSuiteCatchesBrokenBridge switches on one fault at a time and checks that the suite fails
// the requirement the fault breaks, naming it.
func TestSuiteCatchesBrokenBridge(t *testing.T) {
	all := loadScenarios(t)
	tests := []struct {
		name        string
		fault       func(http.Handler) http.Handler
		requirement string
	}{
		{"drop the echo", dropEcho, "DL8"},
		{"reuse an id", reuseID, "A2030"},
		{"ignore the watermark", ignoreWatermark, "DL9"},
		{"lose an unknown field", loseUnknownFields, "A2005"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := runInProcess(t, all, tc.fault, time.Second, nil)
			var row *runner.Row
			for _, rw := range rep.Rows() {
				if rw.Requirement == tc.requirement {
					row = &rw
				}
			}
			require.NotNil(t, row, "the table has a row for %s", tc.requirement)
			require.Equal(t, runner.Fail, row.Status, "the fault is reported against %s: %+v", tc.requirement, *row)
			named := false
			for _, res := range rep.Results {
				if res.KnownBug != "" {
					continue // it fails without the fault too
				}
				for _, f := range res.Failures {
					for _, id := range f.Requirements {
						named = named || id == tc.requirement
					}
				}
			}
			require.True(t, named, "a failure of a scenario that passes on a healthy bridge names %s", tc.requirement)
			t.Logf("%s → %s %s: %s", tc.name, row.Requirement, row.Status, row.Reason)
		})
	}
}
