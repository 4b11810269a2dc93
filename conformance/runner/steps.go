package runner

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// step runs one input step of the customer, or of the agent (agent.go).
func (x *execution) step(ctx context.Context, st Step) *stepError {
	if st.Party == "agent" {
		return x.agentStep(ctx, st)
	}
	switch st.Action {
	case "start":
		return x.start(ctx, st)
	case "generate":
		return x.generate(ctx, st)
	case "refresh":
		return x.refresh(ctx, st)
	case "decode-token":
		return x.decodeToken(st)
	case "expire":
		return x.expire(ctx, st)
	case "post":
		b, ok := x.body(st)
		if !ok {
			return stepFail("DL8", "post needs an activity")
		}
		auth, e := x.auth(st)
		if e != nil {
			return e
		}
		return x.keep(st, "DL8", x.t.do(ctx, http.MethodPost, x.convURL("/activities"), auth, b, "application/json"))
	case "get":
		auth, e := x.auth(st)
		if e != nil {
			return e
		}
		return x.keep(st, "DL9", x.t.do(ctx, http.MethodGet, x.convURL("/activities")+x.watermarkQuery(st), auth, nil, ""))
	case "await":
		return x.await(ctx, st)
	case "stream":
		return x.openStream(ctx, st)
	case "await-keepalive":
		return x.awaitKeepAlive(ctx, st)
	case "drop":
		s, ok := x.streams[first(st.Pos)]
		if !ok {
			return stepFail("", "drop: no stream labelled %q", first(st.Pos))
		}
		s.drop()
		return nil
	case "reconnect":
		auth, e := x.auth(st)
		if e != nil {
			return e
		}
		r := x.t.do(ctx, http.MethodGet, x.convURL("")+x.watermarkQuery(st), auth, nil, "")
		x.takeConversation(r)
		return x.keep(st, "DL5", r)
	case "upload":
		return x.upload(ctx, st)
	case "fetch":
		auth, e := x.auth(st)
		if e != nil {
			return e
		}
		u := x.argValue(first(st.Pos))
		if u == "" {
			return stepFail("DL10", "fetch: nothing to fetch at %s", first(st.Pos))
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return stepFail("DL10", "fetch: %q is not an absolute URL", u)
		}
		return x.keep(st, "DL10", x.t.do(ctx, http.MethodGet, u, auth, nil, ""))
	case "request":
		return x.request(ctx, st)
	}
	return stepFail("", "unknown action %q", st.Action)
}

func first(pos []string) string {
	if len(pos) == 0 {
		return ""
	}
	return pos[0]
}

// userBody is the TokenParameters body naming the user, or nil for user=none.
func (x *execution) userBody(st Step) []byte {
	user := x.vars["user"]
	if v, ok := st.Args["user"]; ok {
		user = x.argValue(v)
	}
	if user == "none" || user == "" {
		return nil
	}
	return encode(map[string]any{"user": map[string]any{"id": user, "name": "User"}})
}

// start: POST /conversations with the secret (auth=secret, the default when there is one), a
// token first generated with the secret (auth=token), or nothing (auth=none).
func (x *execution) start(ctx context.Context, st Step) *stepError {
	mode, set := st.Args["auth"]
	if !set {
		mode = "secret"
	}
	auth := ""
	switch mode {
	case "secret":
		auth = authHeader(x.t.Secret)
	case "none":
	case "token":
		r := x.t.do(ctx, http.MethodPost, x.domain+"/tokens/generate", authHeader(x.t.Secret), x.userBody(st), "application/json")
		if !statusIs(r, http.StatusOK) {
			return x.tokenEndpointError("start auth=token: POST /tokens/generate", r)
		}
		body, _ := r.Body.(map[string]any)
		tok, _ := body["token"].(string)
		if tok == "" {
			return stepMissing("DL3", "start auth=token: /tokens/generate gave no token: %s", r.summary())
		}
		auth = authHeader(tok)
	default:
		var e *stepError
		if auth, e = x.auth(st); e != nil {
			return e
		}
	}
	body := x.userBody(st)
	ctype := "application/json"
	if body == nil {
		ctype = ""
	}
	r := x.t.do(ctx, http.MethodPost, x.domain+"/conversations", auth, body, ctype)
	x.takeConversation(r)
	if mode != "secret" && mode != "none" && r.Err == nil && r.Status/100 == 2 && x.token == "" {
		x.token, x.tokenAt = strings.TrimPrefix(auth, "Bearer "), time.Now()
	}
	if e := x.keep(st, "DL4", r); e != nil {
		return e
	}
	if x.vars["conv"] == "" {
		return stepFail("DL4", "start: no conversationId in %s", r.summary())
	}
	return nil
}

// tokenEndpointError reports a token endpoint that is not there (404, 405, no answer) as a
// missing capability, and any other refusal as a failure.
func (x *execution) tokenEndpointError(what string, r *response) *stepError {
	if r.Err != nil || r.Status == http.StatusNotFound || r.Status == http.StatusMethodNotAllowed {
		return stepMissing("DL3", "%s: the target has no token endpoint (%s)", what, r.summary())
	}
	return stepFail("DL3", "%s: %s", what, r.summary())
}

func (x *execution) generate(ctx context.Context, st Step) *stepError {
	r := x.t.do(ctx, http.MethodPost, x.domain+"/tokens/generate", authHeader(x.t.Secret), x.userBody(st), "application/json")
	if l := st.Label(); l != "" {
		x.responses[l] = r
	}
	if r.Err != nil || r.Status == http.StatusNotFound || r.Status == http.StatusMethodNotAllowed {
		return x.tokenEndpointError("generate", r)
	}
	return x.keep(st, "DL3", r)
}

// refresh: POST /tokens/refresh with the conversation's token; a new token replaces it.
func (x *execution) refresh(ctx context.Context, st Step) *stepError {
	auth, e := x.auth(st)
	if e != nil {
		return e
	}
	if _, set := st.Args["auth"]; !set && x.token == "" {
		return stepMissing("DL3", "refresh: the target gave no token to refresh")
	}
	r := x.t.do(ctx, http.MethodPost, x.domain+"/tokens/refresh", auth, nil, "")
	if l := st.Label(); l != "" {
		x.responses[l] = r
	}
	if r.Err != nil || r.Status == http.StatusNotFound || r.Status == http.StatusMethodNotAllowed {
		return x.tokenEndpointError("refresh", r)
	}
	if body, ok := r.Body.(map[string]any); ok && r.Status == http.StatusOK {
		if tok, ok := body["token"].(string); ok && tok != "" && st.Args["auth"] == "" {
			x.token, x.tokenAt = tok, time.Now()
		}
	}
	return x.keep(st, "DL3", r)
}

// decodeToken makes the claims of a token (from=LABEL, default the conversation's) the
// step's response, for a "< response" block to check.
func (x *execution) decodeToken(st Step) *stepError {
	tok := x.token
	if from := st.Args["from"]; from != "" {
		v, _ := x.ref(from + ":/token")
		tok, _ = v.(string)
	}
	if tok == "" {
		return stepMissing("DL3", "decode-token: the target gave no token")
	}
	claims, err := jwtClaims(tok)
	if err != nil {
		return stepFail("DL3", "decode-token: the token is not a JWT: %v", err)
	}
	x.responses[st.Label()] = &response{Status: http.StatusOK, Body: claims, Raw: encode(claims)}
	return nil
}

// expire waits until the conversation's token has expired: its exp claim, or its expires_in
// from when it was issued, and a second more. A token that lives longer than the runner waits
// makes the scenario unsupported.
func (x *execution) expire(ctx context.Context, st Step) *stepError {
	if x.token == "" {
		return stepMissing("DL3", "expire: the target gave no token")
	}
	until := time.Time{}
	if claims, err := jwtClaims(x.token); err == nil {
		if n, ok := claims["exp"].(interface{ Float64() (float64, error) }); ok {
			if f, err := n.Float64(); err == nil {
				until = time.Unix(int64(f), 0)
			}
		}
	}
	if until.IsZero() && x.tokenTTL > 0 {
		until = x.tokenAt.Add(x.tokenTTL)
	}
	if until.IsZero() {
		return stepMissing("DL3", "expire: the token has neither an exp claim nor an expires_in")
	}
	wait := time.Until(until) + time.Second
	if wait > x.t.maxExpiry() {
		return &stepError{kind: limited, req: "DL2", msg: "expire: the token lives " + time.Until(until).Round(time.Second).String() + "; this run waits at most " + x.t.maxExpiry().String()}
	}
	timer := time.NewTimer(max(wait, 0))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return stepFail("DL2", "expire: %v", ctx.Err())
	}
}

// request sends a raw call: "> customer request METHOD PATH [auth=…] [root=true] [type=…]",
// PATH under the Direct Line base (or the server's root), with the block's "Name: value" lines
// as headers and its JSON value (or string) as the body.
func (x *execution) request(ctx context.Context, st Step) *stepError {
	if len(st.Pos) < 2 {
		return stepFail("", "request needs a method and a path")
	}
	method, p := st.Pos[0], x.argValue(st.Pos[1])
	base := x.domain
	if st.Args["root"] == "true" {
		u, err := url.Parse(x.domain)
		if err != nil {
			return stepFail("DL1", "request: %v", err)
		}
		base = u.Scheme + "://" + u.Host
	}
	auth, e := x.auth(st)
	if e != nil {
		return e
	}
	body, _ := x.body(st)
	ctype := st.Args["type"]
	if body != nil && ctype == "" {
		ctype = "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, x.t.timeout())
	defer cancel()
	var rd *strings.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, base+p, nil)
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, base+p, rd)
	}
	if err != nil {
		return stepFail("", "request: %v", err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, h := range st.Headers {
		req.Header.Set(h[0], interpolate(h[1], x.vars))
	}
	return x.keep(st, "", x.t.send(req))
}

// upload: "> customer upload name=F type=T [user=U]" with an optional activity object and then
// the file's content as a JSON string; sent as botframework-directlinejs sends it (multipart).
func (x *execution) upload(ctx context.Context, st Step) *stepError {
	var act any
	content := ""
	for _, v := range st.Body {
		switch t := x.resolve(v).(type) {
		case map[string]any:
			act = t
		case string:
			content = t
		}
	}
	name, ctype := st.Args["name"], st.Args["type"]
	if name == "" {
		name = "conformance.txt"
	}
	if ctype == "" {
		ctype = "text/plain"
	}
	body, mediaType, err := multipartUpload(act, name, ctype, []byte(content))
	if err != nil {
		return stepFail("DL10", "upload: %v", err)
	}
	auth, e := x.auth(st)
	if e != nil {
		return e
	}
	user := x.vars["user"]
	if v, ok := st.Args["user"]; ok {
		user = x.argValue(v)
	}
	r := x.t.do(ctx, http.MethodPost, x.convURL("/upload?userId="+url.QueryEscape(user)), auth, body, mediaType)
	if r.Err == nil && (r.Status == http.StatusNotFound || r.Status == http.StatusMethodNotAllowed) {
		return stepMissing("DL10", "upload: the target has no upload endpoint (%s)", r.summary())
	}
	return x.keep(st, "DL10", r)
}

// openStream: "> customer stream as=s1 [watermark=W|none]" opens the websocket at the last
// streamUrl the target gave, with its watermark parameter replaced when one is given.
func (x *execution) openStream(ctx context.Context, st Step) *stepError {
	if x.streamURL == "" {
		return stepMissing("DL5,DL6", "stream: the target gave no streamUrl (no websocket stream)")
	}
	su, err := url.Parse(x.streamURL)
	if err != nil || (su.Scheme != "ws" && su.Scheme != "wss") {
		return stepFail("DL5", "stream: streamUrl %q is not an absolute ws(s) URL", x.streamURL)
	}
	if v, set := st.Args["watermark"]; set {
		q := su.Query()
		if v == "none" {
			q.Del("watermark")
		} else {
			q.Set("watermark", x.argValue(v))
		}
		su.RawQuery = q.Encode()
	}
	s, err := dialStream(ctx, su.String(), x.t.timeout(), x.deadline)
	if err != nil {
		return stepFail("DL6", "stream: %v", err)
	}
	x.streams[st.Label()] = s
	return nil
}

// awaitKeepAlive: "> customer await-keepalive s1 [within=30s]" waits for an empty frame.
func (x *execution) awaitKeepAlive(ctx context.Context, st Step) *stepError {
	s, ok := x.streams[first(st.Pos)]
	if !ok {
		return stepFail("", "await-keepalive: no stream labelled %q", first(st.Pos))
	}
	within := 30 * time.Second
	if v := st.Args["within"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return stepFail("", "await-keepalive: within=%s is not a duration", v)
		}
		within = d
	}
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		st := s.snapshot()
		n, closed, changed := st.keepAlives, st.closed, st.changed
		switch {
		case n > 0:
			return nil
		case closed != nil:
			return stepFail("DL6", "await-keepalive: the stream closed before a keep-alive: %v", closed)
		}
		select {
		case <-changed:
		case <-timer.C:
			return stepFail("DL6", "await-keepalive: no empty keep-alive frame within %s", within)
		case <-ctx.Done():
			return stepFail("DL6", "await-keepalive: %v", ctx.Err())
		}
	}
}

// await: "> customer await [stream=s1] [req=…]" with an activity pattern waits until the
// customer sees an activity that matches it (on GET /activities, or the stream).
func (x *execution) await(ctx context.Context, st Step) *stepError {
	if len(st.Body) != 1 {
		return stepFail("", "await needs one activity pattern")
	}
	want := st.Body[0]
	count := 1
	if v := st.Args["count"]; v != "" {
		if _, err := fmt.Sscanf(v, "%d", &count); err != nil || count < 1 {
			return stepFail("", "await: count=%s is not a positive number", v)
		}
	}
	var last []any
	var lastErr string
	err := x.poll(ctx, st.Args["stream"], func(acts []any, problem string) bool {
		last, lastErr = acts, problem
		n := 0
		for _, a := range acts {
			if len(newMatcher(x.vars).try("", want, a)) == 0 {
				n++
			}
		}
		return n >= count
	})
	if err == nil {
		return nil
	}
	req := "DL9"
	if st.Args["stream"] != "" {
		req = "DL6"
	}
	if lastErr != "" {
		return stepFail(req, "await: %s", lastErr)
	}
	what := "no " + show(want)
	if count > 1 {
		what = fmt.Sprintf("fewer than %d of %s", count, show(want))
	}
	return stepFail(firstNonEmpty(st.Args["req"], strings.Join(x.s.Requirements, ",")), "await: within %s the customer saw %s among %d activities: %s",
		x.t.wait(), what, len(last), summarize(last))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
