package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ReplayTurn is how one recorded turn went when replayed against a live bot.
type ReplayTurn struct {
	Turn     int      `json:"turn"`
	User     string   `json:"user"` // what the customer said, briefly; "" for the greeting
	Expected []string `json:"expected"`
	Got      []string `json:"got"`
	Diffs    []string `json:"diffs,omitempty"`
}

// OK reports whether the bot answered as recorded.
func (t ReplayTurn) OK() bool { return len(t.Diffs) == 0 }

// ReplayReport is the outcome of replaying a recorded conversation.
type ReplayReport struct {
	Source       string       `json:"source"`
	Target       string       `json:"target"`
	Conversation string       `json:"conversation,omitempty"`
	Turns        []ReplayTurn `json:"turns"`
	Error        string       `json:"error,omitempty"` // what stopped the replay, if anything
}

// Differences counts the turns whose answers differ from the recording.
func (r *ReplayReport) Differences() int {
	n := 0
	for _, t := range r.Turns {
		if !t.OK() {
			n++
		}
	}
	return n
}

// Replay plays the customer's side of rec against the target's own bot: it starts a
// conversation as the recorded user, posts each recorded activity, waits (up to the target's
// wait) for as many bot messages as the recording has, and reports per turn where they differ.
// Messages are compared by type, text, attachments (content type, and the recorded content as
// a subset) and suggested actions; ids, times and addresses are not compared.
func Replay(ctx context.Context, t *Target, rec *Recording, source string, progress func(ReplayTurn)) *ReplayReport {
	domain, _ := t.Domain(ctx)
	out := &ReplayReport{Source: source, Target: domain}
	s := &Scenario{Name: "replay", Requirements: []string{"replay"}, User: rec.User}
	x := &execution{t: t, s: s, domain: domain, vars: map[string]string{"user": rec.User}, responses: map[string]*response{},
		streams: map[string]*stream{}, deadline: time.Now().Add(scenarioTimeout)}
	if err := x.start(ctx, Step{Action: "start", Args: map[string]string{}}); err != nil {
		out.Error = "start the conversation: " + err.msg
		return out
	}
	out.Conversation = x.vars["conv"]
	had := 0 // bot messages seen so far
	for i, turn := range rec.Turns {
		rt := ReplayTurn{Turn: i}
		if turn.User != nil {
			rt.User = summarizeOne(turn.User)
			body := copyMap(turn.User)
			body["from"] = withUser(body["from"], rec.User)
			r := x.t.do(ctx, http.MethodPost, x.convURL("/activities"), authHeader(firstNonEmpty(x.token, t.Secret)), encode(body), "application/json")
			if r.Err != nil || r.Status/100 != 2 {
				out.Error = fmt.Sprintf("turn %d: POST /activities: %s", i, r.summary())
				out.Turns = append(out.Turns, rt)
				return out
			}
		}
		var want []map[string]any
		for _, m := range turn.Bot {
			if m["type"] == "message" {
				want = append(want, m)
			}
		}
		var got []any
		_ = x.poll(ctx, "", func(acts []any, _ string) bool {
			got = botMessages(acts, rec.User)
			return len(got) >= had+len(want)
		})
		if len(got) > had {
			got = got[had:]
		} else {
			got = nil
		}
		if len(got) > len(want) && i < len(rec.Turns)-1 {
			got = got[:len(want)] // later ones belong to later turns
		}
		had += len(got)
		for _, w := range want {
			rt.Expected = append(rt.Expected, summarizeOne(w))
		}
		for _, g := range got {
			rt.Got = append(rt.Got, summarizeOne(g))
		}
		rt.Diffs = compareReplies(want, got)
		out.Turns = append(out.Turns, rt)
		if progress != nil {
			progress(rt)
		}
	}
	return out
}

// withUser returns a from account with the recorded user's id.
func withUser(from any, user string) any {
	m, ok := from.(map[string]any)
	if !ok {
		return map[string]any{"id": user}
	}
	m = copyMap(m)
	m["id"] = user
	return m
}

// botMessages picks the bot's messages out of what the customer sees.
func botMessages(acts []any, user string) []any {
	var out []any
	for _, a := range acts {
		m, ok := a.(map[string]any)
		if !ok || m["type"] != "message" {
			continue
		}
		if from, _ := m["from"].(map[string]any); from != nil && from["id"] == user {
			continue
		}
		out = append(out, a)
	}
	return out
}

// compareReplies lists how the bot's messages differ from the recorded ones.
func compareReplies(want []map[string]any, got []any) []string {
	var diffs []string
	for i := 0; i < len(want) || i < len(got); i++ {
		switch {
		case i >= len(got):
			diffs = append(diffs, fmt.Sprintf("reply %d: expected %s, got nothing", i+1, summarizeOne(want[i])))
			continue
		case i >= len(want):
			diffs = append(diffs, fmt.Sprintf("reply %d: not in the recording: %s", i+1, summarizeOne(got[i])))
			continue
		}
		pattern := map[string]any{}
		for _, k := range []string{"type", "text", "attachments", "suggestedActions"} {
			if v, ok := want[i][k]; ok {
				pattern[k] = v
			}
		}
		for _, d := range newMatcher(nil).try("", pattern, got[i]) {
			diffs = append(diffs, fmt.Sprintf("reply %d: %s", i+1, d))
		}
	}
	return diffs
}

// WriteText writes the replay's outcome turn by turn, for people.
func (r *ReplayReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "\nreplay of %s against %s (conversation %s)\n", r.Source, r.Target, r.Conversation)
	for _, t := range r.Turns {
		fmt.Fprintln(w, ReplayLine(t))
		for _, d := range t.Diffs {
			fmt.Fprintf(w, "    %s\n", oneLine(d, 300))
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "stopped: %s\n", r.Error)
	}
	_, err := fmt.Fprintf(w, "%d of %d turns answered as recorded\n", len(r.Turns)-r.Differences(), len(r.Turns))
	return err
}

// ReplayLine is the one-line account of a replayed turn.
func ReplayLine(t ReplayTurn) string {
	word := "same"
	if !t.OK() {
		word = "DIFF"
	}
	user := t.User
	if user == "" {
		user = "(greeting)"
	}
	return fmt.Sprintf("%-4s turn %-3d %-40s %d expected, %d got", word, t.Turn, oneLine(user, 40), len(t.Expected), len(t.Got))
}

// WriteJSON writes the replay report as JSON.
func (r *ReplayReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
