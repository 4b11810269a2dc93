package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// errTimedOut ends a poll whose condition never held.
var errTimedOut = errors.New("timed out")

// pollInterval spaces GET /activities polls, as botframework-directlinejs's minimum does.
const pollInterval = 200 * time.Millisecond

// poll calls cond with what the customer has seen (GET /activities from the start, or the
// stream labelled streamLabel) until it returns true or the target's wait passes.
func (x *execution) poll(ctx context.Context, streamLabel string, cond func(acts []any, problem string) bool) error {
	deadline := time.NewTimer(x.t.wait())
	defer deadline.Stop()
	for {
		var acts []any
		var problem string
		var changed <-chan struct{}
		if streamLabel != "" {
			s, ok := x.streams[streamLabel]
			if !ok {
				return fmt.Errorf("no stream labelled %q", streamLabel)
			}
			st := s.snapshot()
			acts, changed = st.acts, st.changed
			if st.closed != nil && !isNormalClose(st.closed) {
				problem = "the stream closed: " + st.closed.Error()
			}
		} else {
			var err error
			acts, _, err = x.collect(ctx)
			if err != nil {
				problem = err.Error()
			}
		}
		if cond(acts, problem) {
			return nil
		}
		tick := time.NewTimer(pollInterval)
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline.C:
			tick.Stop()
			return errTimedOut
		case <-ctx.Done():
			tick.Stop()
			return ctx.Err()
		}
		tick.Stop()
	}
}

func isNormalClose(err error) bool {
	return err != nil && strings.Contains(err.Error(), "close 1000")
}

// collect reads every activity the customer can see: GET /activities without a watermark, then
// after each watermark it gets, until a page brings nothing new. It returns what a conforming
// server would not do on the way (DL7, DL9 anomalies), separately.
func (x *execution) collect(ctx context.Context) (acts []any, anomalies []mismatch, err error) {
	auth := authHeader(x.token)
	if x.token == "" {
		auth = authHeader(x.t.Secret)
	}
	seen := map[string]bool{}
	query := ""
	for page := 0; page < 50; page++ {
		r := x.t.do(ctx, http.MethodGet, x.convURL("/activities")+query, auth, nil, "")
		if r.Err != nil || r.Status != http.StatusOK {
			return acts, anomalies, fmt.Errorf("GET /activities%s: %s", query, r.summary())
		}
		set, ok := r.Body.(map[string]any)
		if !ok {
			return acts, anomalies, fmt.Errorf("GET /activities%s: not an ActivitySet: %s", query, r.summary())
		}
		list, _ := set["activities"].([]any)
		fresh := 0
		var ids []string
		for _, a := range list { // what earlier pages brought is skipped; repeats within a page are kept
			id, _ := pointer(a, "/id")
			s, _ := id.(string)
			if s != "" && seen[s] {
				continue
			}
			ids = append(ids, s)
			acts = append(acts, a)
			fresh++
		}
		for _, id := range ids {
			if id != "" {
				seen[id] = true
			}
		}
		if fresh < len(list) {
			anomalies = append(anomalies, mismatch{Req: "DL9", Msg: fmt.Sprintf("GET /activities%s returned %d activities the customer already had: the watermark was not honoured", query, len(list)-fresh)})
		}
		var wm string
		switch w := set["watermark"].(type) {
		case string:
			wm = w
		case nil:
		default:
			anomalies = append(anomalies, mismatch{Req: "DL7", Msg: "the watermark is " + show(w) + ", not a string"})
			wm = strings.Trim(show(w), `"`)
		}
		next := "?watermark=" + url.QueryEscape(wm)
		if fresh == 0 || wm == "" || next == query {
			return acts, anomalies, nil
		}
		query = next
	}
	return acts, anomalies, nil
}

// check evaluates one expected-output block and records its failures.
func (x *execution) check(ctx context.Context, e Expect) {
	switch e.Kind {
	case "response":
		x.checkResponse(e)
	case "sees":
		x.checkList(ctx, e, func() ([]any, []mismatch, <-chan struct{}, string) {
			acts, anomalies, err := x.collect(ctx)
			if err != nil {
				return acts, anomalies, nil, err.Error()
			}
			return acts, anomalies, nil, ""
		})
	case "stream":
		s := x.streams[e.Label]
		if s == nil {
			x.fail(e.Line, x.blockReqs(e, ""), "no stream labelled "+e.Label+" was opened")
			return
		}
		x.checkList(ctx, e, func() ([]any, []mismatch, <-chan struct{}, string) {
			st := s.snapshot()
			acts, problems, changed := st.acts, st.problems, st.changed
			var anomalies []mismatch
			for _, p := range problems {
				anomalies = append(anomalies, mismatch{Req: "DL6", Msg: p})
			}
			return acts, anomalies, changed, ""
		})
	case "receives":
		if e.Party == "agent" {
			x.checkAgents(ctx, e)
			return
		}
		if x.bot == nil {
			x.fail(e.Line, x.blockReqs(e, ""), "no scripted bot took part")
			return
		}
		x.checkList(ctx, e, func() ([]any, []mismatch, <-chan struct{}, string) {
			acts, problems, changed := x.bot.snapshot()
			var anomalies []mismatch
			for _, p := range problems {
				anomalies = append(anomalies, mismatch{Req: "DL11", Msg: p})
			}
			return acts, anomalies, changed, ""
		})
	}
}

// blockReqs returns the requirements a difference in block e breaks: the difference's own
// (a non-UTC timestamp breaks A2043 wherever it is seen), else the block's req=, else the
// scenario's.
func (x *execution) blockReqs(e Expect, own string) []string {
	switch {
	case own != "":
		return []string{own}
	case len(e.Reqs) > 0:
		return e.Reqs
	}
	return x.s.Requirements
}

func (x *execution) checkResponse(e Expect) {
	r := x.responses[e.Label]
	what := "response " + e.Label
	if r == nil {
		x.fail(e.Line, x.blockReqs(e, ""), what+": the step did not run")
		return
	}
	if r.Err != nil {
		x.fail(e.Line, x.blockReqs(e, ""), what+": "+r.Err.Error())
		return
	}
	if len(e.Status) > 0 && !statusIs(r, e.Status...) {
		x.fail(e.Line, x.blockReqs(e, ""), fmt.Sprintf("%s: status %d, expected %s: %s", what, r.Status, statusList(e.Status), r.summary()))
		return
	}
	for _, h := range e.Headers {
		if !headerMatches(h[1], r.Header.Values(h[0])) {
			got := strings.Join(r.Header.Values(h[0]), ", ")
			if got == "" {
				got = "(none)"
			}
			x.fail(e.Line, x.blockReqs(e, ""), fmt.Sprintf("%s: header %s is %s, expected %s", what, h[0], got, h[1]))
		}
	}
	if len(e.Values) == 0 {
		return
	}
	want, got := e.Values[0], r.Body
	if s, ok := want.(string); ok && got == nil {
		if string(r.Raw) != interpolate(s, x.vars) {
			x.fail(e.Line, x.blockReqs(e, ""), fmt.Sprintf("%s: body %q, expected %q", what, cut(string(r.Raw), 120), s))
		}
		return
	}
	if got == nil {
		x.fail(e.Line, x.blockReqs(e, ""), fmt.Sprintf("%s: the body is not JSON: %s", what, r.summary()))
		return
	}
	m := newMatcher(x.vars)
	m.bound = x.bound()
	for _, mm := range m.try("body", want, got) {
		x.fail(e.Line, x.blockReqs(e, mm.Req), what+": "+mm.String())
	}
	x.keepBindings(m)
}

func statusList(codes []int) string {
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprint(c)
	}
	return strings.Join(parts, " or ")
}

// bound returns the bindings made by earlier blocks; keepBindings stores a block's.
func (x *execution) bound() map[string]any {
	out := map[string]any{}
	for k, v := range x.bindings {
		out[k] = v
	}
	return out
}

func (x *execution) keepBindings(m *matcher) {
	if x.bindings == nil {
		x.bindings = map[string]any{}
	}
	for k, v := range m.bound {
		x.bindings[k] = v
	}
}

// checkList matches a list of activities (what the customer saw, what the bot received, what
// a stream delivered), polling until it matches or the target's wait passes.
func (x *execution) checkList(ctx context.Context, e Expect, read func() ([]any, []mismatch, <-chan struct{}, string)) {
	deadline := time.NewTimer(x.t.wait())
	defer deadline.Stop()
	for {
		acts, anomalies, changed, problem := read()
		m := newMatcher(x.vars)
		m.bound = x.bound()
		diffs := append(idInvariant(acts), anomalies...)
		diffs = append(diffs, matchList(m, e.Mode, e.Values, acts)...)
		diffs = x.relevant(e, diffs)
		if problem != "" {
			diffs = append(diffs, mismatch{Msg: problem})
		}
		if len(diffs) == 0 {
			x.keepBindings(m)
			return
		}
		tick := time.NewTimer(pollInterval)
		select {
		case <-changed:
			tick.Stop()
			continue
		case <-tick.C:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		tick.Stop()
		for _, d := range diffs {
			x.fail(e.Line, x.blockReqs(e, d.Req), blockName(e)+": "+d.String())
		}
		return
	}
}

// relevant keeps the differences that count here: those of the expected values always, and the
// invariants of the protocol (distinct ids, watermark handling) only in scenarios that name the
// requirement they check.
func (x *execution) relevant(e Expect, diffs []mismatch) []mismatch {
	var out []mismatch
	for _, d := range diffs {
		if d.Path == "" && d.Req != "" && !x.s.Names(d.Req) && !contains(e.Reqs, d.Req) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func blockName(e Expect) string {
	switch e.Kind {
	case "sees":
		return "customer sees"
	case "receives":
		return e.Party + " receives"
	}
	return e.Kind + " " + e.Label
}

// idInvariant checks that every activity has an id of its own (A2030: the channel assigns ids,
// one per activity).
func idInvariant(acts []any) []mismatch {
	var out []mismatch
	first := map[string]int{}
	for i, a := range acts {
		v, _ := pointer(a, "/id")
		id, _ := v.(string)
		if id == "" {
			out = append(out, mismatch{Req: "A2030", Msg: fmt.Sprintf("activity #%d (%s) has no id", i+1, summarizeOne(a))})
			continue
		}
		if j, dup := first[id]; dup {
			out = append(out, mismatch{Req: "A2030", Msg: fmt.Sprintf("activities #%d and #%d share the id %q", j+1, i+1, id)})
			continue
		}
		first[id] = i
	}
	return out
}

// matchList matches expected activities against actual ones in a mode: "exactly" (the same
// count, pairwise), "ordered" (an ordered subsequence) or "unordered".
func matchList(m *matcher, mode string, wants, gots []any) []mismatch {
	if mode == "exactly" && len(wants) != len(gots) {
		return []mismatch{{Path: "list", Msg: fmt.Sprintf("expected %d activities, got %d: %s", len(wants), len(gots), summarize(gots))}}
	}
	used := make([]bool, len(gots))
	pos := 0
	for i, w := range wants {
		from, to := pos, len(gots)
		switch mode {
		case "exactly":
			from, to = i, i+1
		case "unordered":
			from = 0
		}
		found := -1
		var best []mismatch
		bestAt := -1
		for j := from; j < to; j++ {
			if used[j] {
				continue
			}
			diffs := m.try(fmt.Sprintf("#%d", j+1), w, gots[j])
			if len(diffs) == 0 {
				found = j
				break
			}
			if best == nil || len(diffs) < len(best) {
				best, bestAt = diffs, j
			}
		}
		if found < 0 {
			msg := fmt.Sprintf("activity %d of %d (%s) not seen", i+1, len(wants), summarizeOne(w))
			if mode == "ordered" && pos > 0 {
				msg += fmt.Sprintf(" after #%d", pos)
			}
			out := mismatch{Path: "list", Msg: msg}
			if bestAt >= 0 {
				var parts []string
				for k, d := range best {
					if k == 3 {
						parts = append(parts, fmt.Sprintf("%d more", len(best)-k))
						break
					}
					parts = append(parts, strings.TrimPrefix(d.String(), fmt.Sprintf("#%d.", bestAt+1)))
					if out.Req == "" {
						out.Req = d.Req
					}
				}
				out.Msg += fmt.Sprintf("; the closest, #%d, differs: %s", bestAt+1, strings.Join(parts, "; "))
			}
			out.Msg += fmt.Sprintf("; seen %d: %s", len(gots), summarize(gots))
			return []mismatch{out}
		}
		used[found] = true
		pos = found + 1
	}
	return nil
}

// summarize lists activities briefly: type, text or name, id.
func summarize(acts []any) string {
	if len(acts) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(acts))
	for i, a := range acts {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("… %d more", len(acts)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("#%d %s", i+1, summarizeOne(a)))
	}
	return strings.Join(parts, "; ")
}

func summarizeOne(a any) string {
	m, ok := a.(map[string]any)
	if !ok {
		return show(a)
	}
	typ, _ := m["type"].(string)
	s := typ
	if t, ok := m["text"].(string); ok {
		s += " " + show(cut(t, 40))
	} else if n, ok := m["name"].(string); ok {
		s += " " + n
	}
	if id, ok := m["id"].(string); ok {
		s += " (" + cut(id, 48) + ")"
	}
	return strings.TrimSpace(s)
}

// checkAgents matches what the agents were shown of the scenario's conversation: one object per
// agent who saw it (agent.go).
func (x *execution) checkAgents(ctx context.Context, e Expect) {
	if x.agent == nil {
		x.fail(e.Line, x.blockReqs(e, ""), "agent receives: the agent leg is not signed in")
		return
	}
	x.checkList(ctx, e, func() ([]any, []mismatch, <-chan struct{}, string) {
		views, changed := x.agent.snapshot(x.vars["conv"])
		return views, nil, changed, ""
	})
}
