package directline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/channels/localbot"
)

// BenchmarkWebsocketConversations drives 1,000 Direct Line conversations, each with a websocket
// stream, through the bridge (in-memory store) to the in-process echo bot, over loopback HTTP.
// Each conversation posts its messages one after another (closed loop); latency is from the
// start of the POST to the bot's reply arriving on that conversation's websocket. It reports
// round trips per second, activities delivered on streams per second, and latency percentiles.
//
//	go test -run '^$' -bench WebsocketConversations -benchtime 5x ./channels/directline
//
// b.N counts the messages each conversation sends.
func BenchmarkWebsocketConversations(b *testing.B) {
	const conversations = 1000
	hub := bridge.NewHub(memory.New(), bridge.HubConfig{BotChannel: localbot.ChannelName}, zerolog.Nop())
	b.Cleanup(hub.Close)
	hub.Register(localbot.New(hub, ""))
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	defer ts.Close()
	srv, err := New(Config{PublicURL: ts.URL, Secret: testSecret, RatePerConversation: -1, KeepAlive: time.Minute}, hub, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	hub.Register(srv)
	srv.Register(mux)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}

	type conv struct {
		id, token string
		ws        *websocket.Conn
		replies   chan time.Time // when each bot reply arrived
	}
	convs := make([]*conv, conversations)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, conversations)
	for i := range convs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequest("POST", ts.URL+"/v3/directline/conversations", nil)
			req.Header.Set("Authorization", "Bearer "+testSecret)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			var cr conversationResponse
			err = json.NewDecoder(resp.Body).Decode(&cr)
			resp.Body.Close()
			if err != nil {
				errs <- err
				return
			}
			ws, _, err := dialer.Dial(cr.StreamURL, nil)
			if err != nil {
				errs <- err
				return
			}
			convs[i] = &conv{id: cr.ConversationID, token: cr.Token, ws: ws, replies: make(chan time.Time, 64)}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	delivered := 0
	var dmu sync.Mutex
	for _, c := range convs {
		go func() { // reader: every activity frame; a bot reply wakes the sender
			for {
				_, data, err := c.ws.ReadMessage()
				if err != nil {
					return
				}
				if len(data) == 0 {
					continue
				}
				now := time.Now()
				var set struct {
					Activities []struct {
						From struct{ ID string }
					}
				}
				if json.Unmarshal(data, &set) != nil {
					continue
				}
				dmu.Lock()
				delivered += len(set.Activities)
				dmu.Unlock()
				for _, a := range set.Activities {
					if a.From.ID == "bot" {
						c.replies <- now
					}
				}
			}
		}()
	}
	defer func() {
		for _, c := range convs {
			c.ws.Close()
		}
	}()

	latencies := make([][]time.Duration, conversations)
	b.ResetTimer()
	start := time.Now()
	for i, c := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte(`{"type":"message","from":{"id":"u"},"text":"ping"}`)
			for range b.N {
				t0 := time.Now()
				req, _ := http.NewRequest("POST", ts.URL+"/v3/directline/conversations/"+c.id+"/activities", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("post: %d", resp.StatusCode)
					return
				}
				select {
				case t1 := <-c.replies:
					latencies[i] = append(latencies[i], t1.Sub(t0))
				case <-time.After(30 * time.Second):
					b.Error("no reply within 30s")
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(latencies...)
	if len(all) == 0 {
		b.Fatal("no round trips")
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*p))] }
	dmu.Lock()
	deliveredNow := delivered
	dmu.Unlock()
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "roundtrips/s")
	b.ReportMetric(float64(deliveredNow)/elapsed.Seconds(), "activities/s")
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(pct(0.999).Microseconds())/1000, "p99.9-ms")
	b.Logf("%d conversations × %d messages in %s: %s", conversations, b.N, elapsed.Round(time.Millisecond),
		strings.Join([]string{fmt.Sprintf("p50 %s", pct(0.5)), fmt.Sprintf("p99 %s", pct(0.99)), fmt.Sprintf("max %s", all[len(all)-1])}, ", "))
}
