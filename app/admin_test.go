package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/bridge/store/sqlite"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

const (
	adminToken = "admin-test-token-0123456789"
	dlSecret   = "admin-test-secret-0123456789"
)

// adminRig is a bridge on SQLite serving its public and admin listeners until the test ends.
type adminRig struct {
	a        *app.App
	public   string
	admin    string
	dataDir  string
	logs     *testutil.Buffer
	shutdown func()
}

func startAdminRig(t *testing.T) *adminRig { return startAdminRigOn(t, func(*app.Config) {}) }

// startAdminRigOn starts the rig with the configuration's changes (another store).
func startAdminRigOn(t *testing.T, change func(*app.Config)) *adminRig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &adminRig{dataDir: t.TempDir(), logs: &testutil.Buffer{}}
	cfg := app.Defaults()
	cfg.Store, cfg.DataDir, cfg.Listen, cfg.ShutdownTimeout = "sqlite", r.dataDir, ln.Addr().String(), 5*time.Second
	cfg.AdminListen, cfg.AdminToken = adminLn.Addr().String(), adminToken
	app.SectionOf[directline.Section](&cfg, "directline").Secret = dlSecret
	change(&cfg)
	r.a, err = app.New(cfg, zerolog.New(r.logs))
	require.NoError(t, err)
	r.a.ServeAdmin(adminLn)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.a.Serve(ctx, ln) }()
	stopped := false
	r.shutdown = func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-served)
		}
	}
	t.Cleanup(r.shutdown)
	r.public, r.admin = r.a.Config().PublicURL, "http://"+adminLn.Addr().String()
	return r
}

// do sends a request with a bearer token ("" for none) and returns the status and body.
func do(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// chat opens a Direct Line conversation as user and says text; it returns the Direct Line
// conversation id.
func (r *adminRig) chat(t *testing.T, user, text string) string {
	t.Helper()
	status, b := do(t, http.MethodPost, r.public+"/v3/directline/conversations", dlSecret, map[string]any{"user": map[string]string{"id": user}})
	require.Equal(t, http.StatusCreated, status, string(b))
	var conv struct {
		ConversationID string `json:"conversationId"`
	}
	require.NoError(t, json.Unmarshal(b, &conv))
	msg := map[string]any{"type": "message", "text": text, "from": map[string]string{"id": user}}
	status, b = do(t, http.MethodPost, r.public+"/v3/directline/conversations/"+conv.ConversationID+"/activities", dlSecret, msg)
	require.Equal(t, http.StatusOK, status, string(b))
	return conv.ConversationID
}

// list lists the conversations with the query q.
func (r *adminRig) list(t *testing.T, q string) app.ListPage {
	t.Helper()
	status, b := do(t, http.MethodGet, r.admin+"/admin/v1/conversations?"+q, adminToken, nil)
	require.Equal(t, http.StatusOK, status, string(b))
	var page app.ListPage
	require.NoError(t, json.Unmarshal(b, &page))
	return page
}

func TestAdminAuth(t *testing.T) {
	r := startAdminRig(t)
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a wrong token", "wrong", http.StatusUnauthorized},
		{"a prefix of the token", adminToken[:10], http.StatusUnauthorized},
		{"the token", adminToken, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := do(t, http.MethodGet, r.admin+"/admin/v1/conversations", tc.token, nil)
			require.Equal(t, tc.status, status, string(b))
			if status != http.StatusOK {
				var e struct {
					Error struct{ Code, Message string }
				}
				require.NoError(t, json.Unmarshal(b, &e))
				require.Equal(t, "unauthorized", e.Error.Code)
				require.Contains(t, e.Error.Message, "admin token")
			}
			status, _ = do(t, http.MethodDelete, r.admin+"/admin/v1/customers/u1/conversations", tc.token, nil)
			if tc.status != http.StatusOK {
				require.Equal(t, tc.status, status)
			}
		})
	}
	// the probes need no token, on both listeners; the API is not on the public one
	for _, base := range []string{r.admin, r.public} {
		require.Contains(t, get(t, base+"/livez", http.StatusOK), `"live"`)
		require.Contains(t, get(t, base+"/readyz", http.StatusOK), `"ready"`)
	}
	var banner strings.Builder
	r.a.WriteBanner(&banner)
	require.Contains(t, banner.String(), "Admin API:")
	require.Contains(t, banner.String(), r.admin+"/admin/v1/\n")
	status, _ := do(t, http.MethodGet, r.public+"/admin/v1/conversations", adminToken, nil)
	require.Equal(t, http.StatusNotFound, status)
	status, b := do(t, http.MethodGet, r.admin+"/admin/v1/conversations?updated_since=yesterday", adminToken, nil)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, string(b), "RFC 3339")
}

func TestAdminListShowExportErase(t *testing.T) {
	r := startAdminRig(t)
	const secretText = "my card number is 4111 1111 1111 1111"
	dl := r.chat(t, "customer-1", secretText)
	other := r.chat(t, "customer-1", "second conversation")
	kept := r.chat(t, "customer-2", "someone else")

	all := r.list(t, "channel=directline")
	require.Len(t, all.Conversations, 3)
	page1 := r.list(t, "limit=2")
	require.Len(t, page1.Conversations, 2)
	require.NotEmpty(t, page1.Next)
	page2 := r.list(t, "limit=2&cursor="+page1.Next)
	require.Len(t, page2.Conversations, 1)
	require.Empty(t, page2.Next)
	require.Empty(t, r.list(t, "state=ended").Conversations)
	require.Len(t, r.list(t, "customer=customer-1").Conversations, 2)
	require.Empty(t, r.list(t, "updated_since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)).Conversations)

	id := convOf(t, r, dl)
	status, b := do(t, http.MethodGet, r.admin+"/admin/v1/conversations/"+id, adminToken, nil)
	require.Equal(t, http.StatusOK, status, string(b))
	var d app.Detail
	require.NoError(t, json.Unmarshal(b, &d))
	require.Equal(t, dl, d.Conversation.Customer.ConversationID)
	require.NotEmpty(t, d.Delivery)
	for _, x := range d.Delivery {
		require.GreaterOrEqual(t, x.Last, int64(0), x.Leg)
	}

	// export, and read it back with the .transcript reader
	status, b = do(t, http.MethodGet, r.admin+"/admin/v1/conversations/"+id+"/transcript", adminToken, nil)
	require.Equal(t, http.StatusOK, status, string(b))
	tr, err := activity.ReadTranscript(bytes.NewReader(b))
	require.NoError(t, err)
	require.NotEmpty(t, tr.Activities)
	var texts []string
	for _, a := range tr.Activities {
		texts = append(texts, a.Text)
	}
	require.Contains(t, texts, secretText)
	var again bytes.Buffer
	require.NoError(t, activity.WriteTranscript(&again, tr))
	require.JSONEq(t, string(b), again.String(), "the export round-trips")

	// erase one conversation
	status, b = do(t, http.MethodDelete, r.admin+"/admin/v1/conversations/"+id, adminToken, nil)
	require.Equal(t, http.StatusOK, status, string(b))
	status, _ = do(t, http.MethodGet, r.public+"/v3/directline/conversations/"+dl+"/activities", dlSecret, nil)
	require.Equal(t, http.StatusNotFound, status, "Direct Line no longer knows the erased conversation")
	for _, path := range []string{"", "/transcript"} {
		status, b = do(t, http.MethodGet, r.admin+"/admin/v1/conversations/"+id+path, adminToken, nil)
		require.Equal(t, http.StatusNotFound, status)
		require.Contains(t, string(b), `"not_found"`)
	}
	status, _ = do(t, http.MethodDelete, r.admin+"/admin/v1/conversations/"+id, adminToken, nil)
	require.Equal(t, http.StatusNotFound, status, "erased twice")

	// erase the customer's others
	otherID := convOf(t, r, other)
	status, b = do(t, http.MethodDelete, r.admin+"/admin/v1/customers/customer-1/conversations", adminToken, nil)
	require.Equal(t, http.StatusOK, status, string(b))
	var erased app.Erased
	require.NoError(t, json.Unmarshal(b, &erased))
	require.Equal(t, []string{otherID}, erased.Erased)
	require.Len(t, r.list(t, "").Conversations, 1)
	require.Equal(t, convOf(t, r, kept), r.list(t, "").Conversations[0].ID)

	logs := r.logs.String()
	require.Contains(t, logs, `"audit":"export"`)
	require.Contains(t, logs, `"audit":"erase"`)
	require.Contains(t, logs, `"who":"admin token"`)
	require.Contains(t, logs, `"count":1`)
	require.NotContains(t, logs, secretText)
	require.NotContains(t, logs, adminToken)
	require.NotContains(t, logs, "customer-1", "the audit line names the customer by a hash")

	r.shutdown()
	requireNothingOf(t, filepath.Join(r.dataDir, sqlite.FileName), []string{id, dl, otherID, other, secretText, "second conversation"},
		[]string{kept, "someone else"})
	files, err := os.ReadDir(r.dataDir)
	require.NoError(t, err)
	for _, f := range files {
		if f.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(r.dataDir, f.Name()))
		require.NoError(t, err)
		require.False(t, bytes.Contains(b, []byte(secretText)), "the bytes of %s hold the erased text", f.Name())
	}
}

// convOf returns the bridge's id of the Direct Line conversation dl.
func convOf(t *testing.T, r *adminRig, dl string) string {
	t.Helper()
	for _, c := range r.list(t, "").Conversations {
		status, b := do(t, http.MethodGet, r.admin+"/admin/v1/conversations/"+c.ID, adminToken, nil)
		require.Equal(t, http.StatusOK, status)
		var d app.Detail
		require.NoError(t, json.Unmarshal(b, &d))
		if d.Conversation.Customer.ConversationID == dl {
			return c.ID
		}
	}
	t.Fatalf("no conversation has the Direct Line leg %s", dl)
	return ""
}

// requireNothingOf searches every column of every table of the SQLite file for each needle,
// and finds each of present (a control: the search does find what is there).
func requireNothingOf(t *testing.T, path string, needles, present []string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	for _, n := range needles {
		require.Empty(t, findIn(t, db, n), "%q is still in the file", n)
	}
	for _, n := range present {
		require.NotEmpty(t, findIn(t, db, n), "%q is in the file", n)
	}
}

// findIn returns the table.column names whose values hold needle.
func findIn(t *testing.T, db *sql.DB, needle string) (where []string) {
	t.Helper()
	tables := queryStrings(t, db, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	require.Contains(t, tables, "log")
	for _, tbl := range tables {
		for _, col := range queryStrings(t, db, fmt.Sprintf(`SELECT name FROM pragma_table_info('%s')`, tbl)) {
			var count int
			q := fmt.Sprintf(`SELECT count(*) FROM "%s" WHERE instr(CAST("%s" AS TEXT), ?) > 0`, tbl, col)
			require.NoError(t, db.QueryRow(q, needle).Scan(&count))
			if count > 0 {
				where = append(where, tbl+"."+col)
			}
		}
	}
	return where
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestAdminListenBeyondLoopbackWantsAToken(t *testing.T) {
	cfg := app.Defaults()
	cfg.Store, cfg.AdminListen = "memory", "0.0.0.0:9090"
	cfg.Finish()
	err := cfg.Validate()
	require.ErrorContains(t, err, `admin_listen "0.0.0.0:9090" is not a loopback address and BRIDGE_ADMIN_TOKEN is not set`)
	cfg.AdminToken = strings.Repeat("t", 32)
	require.NoError(t, cfg.Validate())
	cfg.AdminListen, cfg.AdminToken = "127.0.0.1:9090", ""
	require.NoError(t, cfg.Validate(), "loopback needs no token")
}

// Erasing a conversation ends its open websocket stream: the stream's reader is woken and
// finds the conversation gone.
func TestAdminEraseEndsTheStream(t *testing.T) {
	r := startAdminRig(t)
	status, b := do(t, http.MethodPost, r.public+"/v3/directline/conversations", dlSecret, map[string]any{"user": map[string]string{"id": "streamer"}})
	require.Equal(t, http.StatusCreated, status, string(b))
	var conv struct {
		ConversationID string `json:"conversationId"`
		StreamURL      string `json:"streamUrl"`
	}
	require.NoError(t, json.Unmarshal(b, &conv))
	ws, resp, err := websocket.DefaultDialer.Dial(conv.StreamURL, nil)
	require.NoError(t, err)
	resp.Body.Close()
	defer ws.Close()
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				ended <- err
				return
			}
		}
	}()
	id := convOf(t, r, conv.ConversationID)
	status, b = do(t, http.MethodDelete, r.admin+"/admin/v1/conversations/"+id, adminToken, nil)
	require.Equal(t, http.StatusOK, status, string(b))
	select {
	case err := <-ended:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of the erased conversation is still open")
	}
}

// On Redis too: after a customer's erase nothing of their conversations is left in any key's
// name or in a global index, Direct Line answers 404, and the other customer's is whole.
func TestAdminEraseOnRedis(t *testing.T) {
	addr := testutil.RedisServer(t)
	r := startAdminRigOn(t, func(c *app.Config) { c.Store, c.Redis.URL = "redis", "redis://"+addr+"/0" })
	dl := r.chat(t, "customer-r", "erase me")
	kept := r.chat(t, "customer-k", "keep me")
	id, keptID := convOf(t, r, dl), convOf(t, r, kept)
	status, b := do(t, http.MethodDelete, r.admin+"/admin/v1/customers/customer-r/conversations", adminToken, nil)
	require.Equal(t, http.StatusOK, status, string(b))
	require.Contains(t, string(b), id)
	status, _ = do(t, http.MethodGet, r.public+"/v3/directline/conversations/"+dl+"/activities", dlSecret, nil)
	require.Equal(t, http.StatusNotFound, status)

	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	found := false
	for _, k := range keys {
		for _, gone := range []string{id, dl} {
			require.NotContains(t, k, gone)
		}
		found = found || strings.Contains(k, keptID)
		switch rdb.Type(ctx, k).Val() {
		case "set":
			require.NotContains(t, rdb.SMembers(ctx, k).Val(), id, k)
		case "zset":
			for _, m := range rdb.ZRange(ctx, k, 0, -1).Val() {
				require.NotContains(t, m, id, k)
			}
		case "string":
			require.NotEqual(t, id, rdb.Get(ctx, k).Val(), k)
		}
	}
	require.True(t, found, "the other customer's conversation is kept")
	require.Len(t, r.list(t, "").Conversations, 1)
}

// Without BRIDGE_ADMIN_TOKEN the admin API is off (403 saying how to turn it on, whatever the
// request bears); the probes still answer.
func TestAdminDisabledWithoutToken(t *testing.T) {
	r := startAdminRigOn(t, func(c *app.Config) { c.AdminToken = "" })
	for _, tok := range []string{"", "anything"} {
		status, b := do(t, http.MethodGet, r.admin+"/admin/v1/conversations", tok, nil)
		require.Equal(t, http.StatusForbidden, status)
		require.Contains(t, string(b), `"disabled"`)
		require.Contains(t, string(b), "set BRIDGE_ADMIN_TOKEN")
	}
	require.Contains(t, get(t, r.admin+"/livez", http.StatusOK), `"live"`)
	var banner strings.Builder
	r.a.WriteBanner(&banner)
	require.Contains(t, banner.String(), "(off: set BRIDGE_ADMIN_TOKEN)")
}
