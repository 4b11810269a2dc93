package salesforce_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/app/apptest"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/salesforce"
)

const (
	testIssuer = "https://shop.example.com"
	testKID    = "bridge-key-1"
	testSecret = "salesforce-test-secret-0123456789"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// identityKey returns a 2048-bit key (made once per test binary) and its PEM file in dir.
func identityKey(t testing.TB) (*rsa.PrivateKey, string) {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	file := filepath.Join(t.TempDir(), "identity.pem")
	der, err := x509.MarshalPKCS8PrivateKey(testKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return testKey, file
}

// sfSection is the salesforce: section for the fake, with fast retries and reconnects.
func sfSection(f *fakeMIAW, keyFile string) salesforce.Config {
	return salesforce.Config{
		Enabled: true, SCRTURL: f.URL(), OrgID: fakeOrg, ESDeveloperName: fakeES,
		RoutingAttributes: map[string]any{"Channel": "web", "BotHandoffTopic": "static, overridden by the bot"},
		IdentityIssuer:    testIssuer, IdentityKeyID: testKID, IdentityPrivateKeyFile: keyFile,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, MaxRetryAfter: 5 * time.Second,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 300 * time.Millisecond, HeartbeatTimeout: 10 * time.Second,
	}
}

// liveBridge is the whole bridge (app) on loopback with the sandbox bot, escalating to the fake.
type liveBridge struct {
	app *app.App
	url string
}

func startBridge(t *testing.T, f *fakeMIAW) *liveBridge {
	t.Helper()
	return startBridgeLog(t, f, apptest.Log(t, zerolog.WarnLevel))
}

func startBridgeLog(t *testing.T, f *fakeMIAW, log zerolog.Logger) *liveBridge {
	t.Helper()
	_, keyFile := identityKey(t)
	cfg := app.Defaults()
	cfg.Escalation.Target = salesforce.Name
	app.SectionOf[directline.Section](&cfg, "directline").Secret = testSecret
	*app.SectionOf[salesforce.Config](&cfg, "salesforce") = sfSection(f, keyFile)
	a := apptest.Serve(t, cfg, log)
	return &liveBridge{app: a, url: a.Config().PublicURL}
}

// customer is a Direct Line client of the bridge, in Go.
type customer struct {
	t            testing.TB
	base, userID string
	conv, token  string
}

// newCustomer gets a token from the site's server side (the secret), with a verified
// identity when email is set, and starts the conversation.
func (b *liveBridge) newCustomer(t testing.TB, userID, email string) *customer {
	t.Helper()
	body := map[string]any{"user": map[string]string{"id": userID}}
	if email != "" {
		body["user"] = map[string]string{"id": userID, "name": "Ada Lovelace", "email": email}
	}
	var r struct{ ConversationID, Token string }
	doJSON(t, "POST", b.url+"/v3/directline/tokens/generate", testSecret, body, &r)
	c := &customer{t: t, base: b.url + "/v3/directline", userID: userID, conv: r.ConversationID, token: r.Token}
	doJSON(t, "POST", c.base+"/conversations", c.token, nil, nil)
	return c
}

func doJSON(t testing.TB, method, url, bearer string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		raw, _ := json.Marshal(in)
		body = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, "%s %s: %s", method, url, raw)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out))
	}
}

func (c *customer) post(kind, text string) {
	c.t.Helper()
	doJSON(c.t, "POST", c.base+"/conversations/"+c.conv+"/activities", c.token,
		map[string]any{"type": kind, "from": map[string]string{"id": c.userID}, "text": text}, nil)
}

func (c *customer) say(text string) { c.post("message", text) }

// sayAnyway posts a message and returns the status: the Direct Line server answers 502 when
// the first delivery failed, the message being in the log all the same.
func (c *customer) sayAnyway(text string) int {
	raw, _ := json.Marshal(map[string]any{"type": "message", "from": map[string]string{"id": c.userID}, "text": text})
	req, _ := http.NewRequest("POST", c.base+"/conversations/"+c.conv+"/activities", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// upload sends a file as the widget does (POST /upload).
func (c *customer) upload(name, ctype string, data []byte) {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="file"; filename=%q`, name)}
	h["Content-Type"] = []string{ctype}
	pw, _ := mw.CreatePart(h)
	_, _ = pw.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", c.base+"/conversations/"+c.conv+"/upload?userId="+c.userID, &buf)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Less(c.t, resp.StatusCode, 300, "upload: %s", raw)
}

// seen is what the customer's client shows: every activity of the conversation (GET
// /activities from the start).
type seen struct {
	ID, Type, Text string
	From           struct{ ID, Name string }
	Attachments    []struct{ Name, ContentURL string }
}

func (c *customer) activities() []seen {
	c.t.Helper()
	var r struct{ Activities []seen }
	doJSON(c.t, "GET", c.base+"/conversations/"+c.conv+"/activities", c.token, nil, &r)
	return r.Activities
}

// texts returns the texts of the messages not from the customer, in order.
func (c *customer) texts() []string {
	var out []string
	for _, a := range c.activities() {
		if a.Type == "message" && a.From.ID != c.userID {
			out = append(out, a.Text)
		}
	}
	return out
}

// waitText waits for a message with that text from someone else.
func (c *customer) waitText(text string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		for _, s := range c.texts() {
			if s == text {
				return true
			}
		}
		return false
	}, 15*time.Second, 20*time.Millisecond, "the customer never saw %q; saw %q", text, c.texts())
}

func (c *customer) ended() bool {
	for _, a := range c.activities() {
		if a.Type == "endOfConversation" {
			return true
		}
	}
	return false
}

// escalate has the sandbox bot hand off and waits for the fake's conversation.
func escalate(t *testing.T, f *fakeMIAW, c *customer) convView {
	t.Helper()
	c.say("hello")
	c.waitText(`You said: "hello". I'm a simple sandbox bot: say "nurse" or "I want to talk to a human".`)
	c.say("I want to talk to a human")
	require.Eventually(t, func() bool {
		cv := f.conversations()
		return len(cv) == 1 && len(cv[0].Texts) > 0
	}, 15*time.Second, 20*time.Millisecond, "the fake never got a conversation with the transcript")
	return f.conversations()[0]
}

// count returns how many of the customer's view are texts equal to s.
func count(texts []string, s string) int {
	n := 0
	for _, x := range texts {
		if x == s {
			n++
		}
	}
	return n
}

func contains(hay []string, sub string) bool {
	for _, s := range hay {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
