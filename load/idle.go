package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/bfbridge/bfbridge/internal/ctxutil"
	"github.com/rs/zerolog"
)

// DefaultIdleConversations is the number of idle conversations the goals are set for: with one
// socket each on the bridge and on the generator, it stays under the 20,000 files a process
// may open on the 2-core machine the goals were measured on.
const DefaultIdleConversations = 9500

// IdleOptions configures RunIdle.
type IdleOptions struct {
	// Conversations is how many conversations to hold. Default: DefaultIdleConversations.
	Conversations int
	// Hold is how long they are held before the bridge is measured. Go forces a garbage
	// collection every two minutes, so a hold over that measures collected memory. Default: 130s.
	Hold time.Duration
	// Store is the bridge's store, "sqlite" (default) or "memory".
	Store string
	// Bot is how the bridge reaches the bot: "inproc" (default), the sandbox bot in its own
	// process, or "directline", through a Direct Line websocket per conversation to another
	// bridge process that plays the hosted bot's Direct Line service (Health Bot, Copilot
	// Studio): a conversation then holds two sockets on the measured bridge.
	Bot string
	// Sources is how many loopback source addresses the sockets are spread over. Default: 16.
	Sources int
	// Executable is the bridge binary. Default: os.Executable().
	Executable string
}

// IdleResult is what held idle conversations cost the bridge process.
type IdleResult struct {
	Started       time.Time `json:"started"`
	Command       string    `json:"command,omitempty"`
	Machine       Machine   `json:"machine"`
	Conversations int       `json:"conversations"`
	Store         string    `json:"store"`
	Bot           string    `json:"bot"`
	// SocketsPerConversation is how many sockets a conversation holds on the measured bridge:
	// its customer's stream, and with Bot "directline" its upstream stream.
	SocketsPerConversation int     `json:"sockets_per_conversation"`
	HoldSeconds            float64 `json:"hold_s"`
	OpenSeconds            float64 `json:"open_s"` // to open them all, streams included, and exchange one message each

	RSSBaseMiB         float64 `json:"rss_base_mib"` // before any conversation
	RSSMiB             float64 `json:"rss_mib"`      // at the end of the hold
	RSSPeakMiB         float64 `json:"rss_peak_mib"` // the most seen during the hold
	PerConversationKiB float64 `json:"rss_per_conversation_kib"`
	Threads            int     `json:"threads"`
	// IdleCores is the CPU the bridge used while it held the idle conversations, in cores.
	IdleCores float64 `json:"idle_cores"`

	GoroutinesBase            int64   `json:"goroutines_base"`
	Goroutines                int64   `json:"goroutines"`
	GoroutinesPerConversation float64 `json:"goroutines_per_conversation"`

	// From the bridge's last GC trace line of the hold (Go forces a collection every two
	// minutes): the live heap and the goroutine stacks, per conversation, in KiB.
	HeapPerConversationKiB  float64 `json:"heap_per_conversation_kib,omitempty"`
	StackPerConversationKiB float64 `json:"stack_per_conversation_kib,omitempty"`
	GCTraceSeen             bool    `json:"gc_trace_seen"`

	Streams int              `json:"streams"` // open streams the bridge reported on /healthz
	Errors  map[string]int64 `json:"errors,omitempty"`
	Goals   []Ratio          `json:"goals"`
}

// RunIdle starts a bridge process, opens the conversations (each with its websocket stream and
// one message answered by the bot, so that its log and bot leg exist), holds them idle, and
// measures the process: VmRSS from /proc, goroutines from a stack dump (SIGQUIT with
// GOTRACEBACK=all, counted against a bridge with no conversations). Progress lines go to
// progress, one a second.
func RunIdle(ctx context.Context, o IdleOptions, progress io.Writer, log zerolog.Logger) (*IdleResult, error) {
	sockets, err := o.normalize()
	if err != nil {
		return nil, err
	}
	res := &IdleResult{Started: time.Now(), Machine: describeMachine(), Conversations: o.Conversations, Store: o.Store,
		Bot: o.Bot, SocketsPerConversation: sockets, HoldSeconds: o.Hold.Seconds()}
	if lim := res.Machine.OpenFiles; lim != 0 && uint64(sockets*o.Conversations+256) > lim {
		return nil, fmt.Errorf("idle: %d conversations need more open files than the limit of %d (ulimit -n)", o.Conversations, lim)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Hold+10*time.Minute)
	defer cancel()
	lo := Options{Executable: o.Executable, Sources: o.Sources, HTTPConns: 64, PollInterval: time.Second}
	exe, err := lo.executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bfbridge-idle-")
	if err != nil {
		return nil, fmt.Errorf("idle: temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	setup, stopUpstream, err := idleSetup(ctx, exe, dir, o)
	if err != nil {
		return nil, err
	}
	defer stopUpstream()
	baseGC, err := measureBase(ctx, exe, dir, setup, res, progress)
	if err != nil {
		return nil, err
	}
	br, ep, err := startIn(ctx, exe, filepath.Join(dir, "run"), setup)
	if err != nil {
		return nil, err
	}
	defer br.stop(5 * time.Second)
	if err := ctxutil.Sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	rss0, _, err := procStatus(br.pid())
	if err != nil {
		return nil, fmt.Errorf("idle: %w", err)
	}
	res.RSSBaseMiB = mib(rss0)

	cl := newClient(ep, ModeWebsocket, &lo, log)
	defer cl.close()
	if err := openIdle(ctx, cl, o, res, progress); err != nil {
		return nil, err
	}
	h := holding{br: br, rss0: rss0, conversations: o.Conversations}
	if err := h.hold(ctx, o.Hold, progress); err != nil {
		return nil, err
	}
	if err := h.measure(ctx, res, ep.base, baseGC); err != nil {
		return nil, err
	}
	cl.closing.Store(true) // the dump ends the bridge: its streams breaking is expected
	_ = br.signal(syscall.SIGQUIT, 30*time.Second)
	res.Goroutines = br.goroutines.Load()
	res.GoroutinesPerConversation = float64(res.Goroutines-res.GoroutinesBase) / float64(o.Conversations)
	res.Errors = cl.errorCounts()
	res.Machine.LoadAfter = loadAverage()
	res.Goals = idleGoals(res)
	return res, nil
}

// normalize fills in o's defaults and checks it; it returns the sockets a conversation holds
// on the measured bridge.
func (o *IdleOptions) normalize() (sockets int, err error) {
	if o.Conversations == 0 {
		o.Conversations = DefaultIdleConversations
	}
	if o.Hold == 0 {
		o.Hold = 130 * time.Second
	}
	if o.Store == "" {
		o.Store = "sqlite"
	}
	if o.Sources <= 0 {
		o.Sources = 16
	}
	switch {
	case o.Conversations < 1 || o.Conversations > MaxConversations:
		return 0, fmt.Errorf("idle: conversations %d must be within 1..%d", o.Conversations, MaxConversations)
	case o.Hold < 0 || o.Hold > MaxDuration:
		return 0, fmt.Errorf("idle: hold %s must be within 0..%s", o.Hold, MaxDuration)
	case o.Store != "sqlite" && o.Store != "memory":
		return 0, fmt.Errorf("idle: store %q must be sqlite or memory", o.Store)
	}
	switch o.Bot {
	case "", BotInProcess:
		o.Bot = BotInProcess
		return 1, nil
	case "directline":
		return 2, nil
	}
	return 0, fmt.Errorf("idle: bot %q must be inproc or directline", o.Bot)
}

// idleSetup returns how the measured bridges are started and, with Bot "directline", starts
// the hosted bot's Direct Line service; stop stops it.
func idleSetup(ctx context.Context, exe, dir string, o IdleOptions) (setup bridgeSetup, stop func(), err error) {
	// The stack dump counts goroutines; the GC trace tells the live heap and the stacks apart.
	setup = bridgeSetup{store: o.Store, env: []string{"GOTRACEBACK=all", "GODEBUG=gctrace=1"}}
	if o.Bot != "directline" {
		return setup, func() {}, nil
	}
	// The hosted bot: a bridge of its own with the sandbox echo bot, in memory.
	up, upEp, err := startIn(ctx, exe, filepath.Join(dir, "upstream"), bridgeSetup{store: "memory"})
	if err != nil {
		return setup, nil, fmt.Errorf("idle: the hosted bot's Direct Line: %w", err)
	}
	setup.hostedBot = &upEp
	return setup, func() { _ = up.stop(5 * time.Second) }, nil
}

// startIn starts a bridge process in a new directory dir.
func startIn(ctx context.Context, exe, dir string, setup bridgeSetup) (*child, endpoint, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, endpoint{}, fmt.Errorf("idle: %w", err)
	}
	c, ep, err := startBridge(ctx, exe, dir, setup)
	if err != nil {
		return nil, endpoint{}, fmt.Errorf("idle: %w", err)
	}
	return c, ep, nil
}

// measureBase counts the goroutines of a bridge with no conversation, from its stack dump,
// and returns its last GC trace.
func measureBase(ctx context.Context, exe, dir string, setup bridgeSetup, res *IdleResult, progress io.Writer) (*gcTrace, error) {
	fmt.Fprintln(progress, "idle: measuring a bridge with no conversations")
	base, _, err := startIn(ctx, exe, filepath.Join(dir, "base"), setup)
	if err != nil {
		return nil, err
	}
	if err := ctxutil.Sleep(ctx, time.Second); err != nil {
		_ = base.stop(5 * time.Second)
		return nil, err
	}
	_ = base.signal(syscall.SIGQUIT, 10*time.Second)
	res.GoroutinesBase = base.goroutines.Load()
	return base.lastGC.Load(), nil
}

// openIdle opens the conversations with their streams and has each exchange one message.
func openIdle(ctx context.Context, cl *client, o IdleOptions, res *IdleResult, progress io.Writer) error {
	began := time.Now()
	last := began
	err := cl.open(ctx, o.Conversations, func(n int) {
		if now := time.Now(); now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(progress, "idle: %d of %d conversations open\n", n, o.Conversations)
		}
	})
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if err := cl.hello(ctx); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	res.OpenSeconds = time.Since(began).Seconds()
	cl.http.CloseIdleConnections() // only the streams stay open
	fmt.Fprintf(progress, "idle: %d conversations open and answered in %.1fs; holding them for %s\n", o.Conversations, res.OpenSeconds, o.Hold)
	return nil
}

// holding is the measured bridge while it holds the idle conversations.
type holding struct {
	br            *child
	rss0          int64 // RSS before any conversation
	conversations int

	peak  int64
	start time.Time
	cpu0  time.Duration
}

// hold waits for d, printing the bridge's RSS every second and keeping its peak.
func (h *holding) hold(ctx context.Context, d time.Duration, progress io.Writer) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	h.start = time.Now()
	var err error
	if h.cpu0, err = procCPU(h.br.pid()); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("idle: %w", ctx.Err())
		case <-end.C:
			return nil
		case <-h.br.done:
			return fmt.Errorf("idle: the bridge exited; its output:\n%s", h.br.output())
		case <-tick.C:
			rss, threads, err := procStatus(h.br.pid())
			if err != nil {
				return fmt.Errorf("idle: %w", err)
			}
			h.peak = max(h.peak, rss)
			fmt.Fprintf(progress, "idle: %3.0fs  RSS %6.1f MiB (%5.1f KiB per conversation over the base)  threads %d\n",
				time.Since(h.start).Seconds(), mib(rss), float64(rss-h.rss0)/1024/float64(h.conversations), threads)
		}
	}
}

// measure fills res with the memory, CPU and streams of the bridge at the end of the hold.
func (h *holding) measure(ctx context.Context, res *IdleResult, base string, baseGC *gcTrace) error {
	n := float64(h.conversations)
	rss, threads, err := procStatus(h.br.pid())
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if cpu, err := procCPU(h.br.pid()); err == nil {
		res.IdleCores = (cpu - h.cpu0).Seconds() / time.Since(h.start).Seconds()
	}
	res.RSSMiB, res.RSSPeakMiB, res.Threads = mib(rss), mib(max(h.peak, rss)), threads
	res.PerConversationKiB = float64(rss-h.rss0) / 1024 / n
	res.Streams = healthStreams(ctx, base)
	if gc := h.br.lastGC.Load(); gc != nil {
		res.GCTraceSeen = true
		var heap0, stacks0 int64
		if baseGC != nil {
			heap0, stacks0 = baseGC.HeapLive, baseGC.Stacks
		}
		res.HeapPerConversationKiB = float64(gc.HeapLive-heap0) * 1024 / n
		res.StackPerConversationKiB = float64(gc.Stacks-stacks0) * 1024 / n
	}
	return nil
}

// hello has every conversation send one message and wait for the bot's answer, 64 at a time.
func (cl *client) hello(ctx context.Context) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 64)
	for _, c := range cl.convs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n := c.begin()
			cl.send(ctx, c, n, time.Now().UnixNano())
			t := time.NewTimer(15 * time.Second)
			defer t.Stop()
			select {
			case <-c.replied:
			case <-t.C:
				mu.Lock()
				errs = append(errs, fmt.Errorf("conversation %d: no answer within 15s", c.idx))
				mu.Unlock()
			case <-ctx.Done():
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d conversations had no answer: %w", len(errs), errs[0])
	}
	return ctx.Err()
}

// healthStreams returns the open streams /healthz reports (-1 when it cannot be read).
func healthStreams(ctx context.Context, base string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return -1
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var h struct {
		Streams int `json:"streams"`
	}
	if json.NewDecoder(resp.Body).Decode(&h) != nil {
		return -1
	}
	return h.Streams
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// idleGoals judges the result against goals G1 and G2.
func idleGoals(r *IdleResult) []Ratio {
	at := func(ok bool) *bool {
		if r.Conversations < DefaultIdleConversations {
			return nil // the goals are for 9,500 conversations
		}
		return met(ok)
	}
	return []Ratio{
		{Name: "RSS per idle conversation", Value: r.PerConversationKiB, Unit: " KiB", Goal: "≤ 32 KiB at 9,500", Met: at(r.PerConversationKiB <= 32)},
		{Name: fmt.Sprintf("RSS with %d conversations", r.Conversations), Value: r.RSSMiB, Unit: " MiB", Goal: "≤ 384 MiB at 9,500", Met: at(r.RSSMiB <= 384)},
		{Name: fmt.Sprintf("goroutines per socket (%d a conversation on the bridge)", r.SocketsPerConversation), Value: r.goroutinesPerSocket(), Unit: "", Goal: "≤ 1.5 per socket", Met: at(r.goroutinesPerSocket() <= 1.5)},
	}
}

func (r *IdleResult) goroutinesPerSocket() float64 {
	return r.GoroutinesPerConversation / float64(max(r.SocketsPerConversation, 1))
}

func (r *IdleResult) lines() [][2]string {
	return [][2]string{
		{"conversations held", fmt.Sprintf("%d (streams open on /healthz: %d)", r.Conversations, r.Streams)},
		{"store", r.Store},
		{"bot", map[string]string{BotInProcess: "in the bridge's process (no socket)", "directline": "through a Direct Line websocket to another process"}[r.Bot]},
		{"opened and answered in", fmt.Sprintf("%.1fs", r.OpenSeconds)},
		{"held for", fmt.Sprintf("%.0fs", r.HoldSeconds)},
		{"RSS before / after / peak", fmt.Sprintf("%.1f / %.1f / %.1f MiB", r.RSSBaseMiB, r.RSSMiB, r.RSSPeakMiB)},
		{"RSS per conversation", fmt.Sprintf("%.1f KiB", r.PerConversationKiB)},
		{"live heap / stacks per conversation (last GC)", gcCell(r)},
		{"goroutines before / after", fmt.Sprintf("%d / %d", r.GoroutinesBase, r.Goroutines)},
		{"goroutines per conversation / per socket", fmt.Sprintf("%.2f / %.2f", r.GoroutinesPerConversation, r.goroutinesPerSocket())},
		{"OS threads", fmt.Sprint(r.Threads)},
		{"CPU while idle", fmt.Sprintf("%.3f cores", r.IdleCores)},
	}
}

func gcCell(r *IdleResult) string {
	if !r.GCTraceSeen {
		return "– (no GC during the hold)"
	}
	return fmt.Sprintf("%.1f / %.1f KiB", r.HeapPerConversationKiB, r.StackPerConversationKiB)
}

// WriteText writes the result for a terminal.
func (r *IdleResult) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range r.lines() {
		fmt.Fprintf(tw, "%s\t%s\n", l[0], l[1])
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	rep := Report{Ratios: r.Goals}
	rep.writeTail(w, "")
	return nil
}

// WriteMarkdown writes the result as a Markdown table.
func (r *IdleResult) WriteMarkdown(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %d GiB, Linux %s, %s, open files %d; load average before %s, after %s.\n\n",
		m.CPUs, orDefault(m.CPUModel, "unknown model"), m.MemoryGiB, m.Kernel, m.Go, m.OpenFiles, m.LoadBefore, m.LoadAfter)
	if r.Command != "" {
		fmt.Fprintf(w, "```\n%s\n```\n\n", r.Command)
	}
	fmt.Fprintln(w, "| measure | value |\n|---|---|")
	for _, l := range r.lines() {
		fmt.Fprintf(w, "| %s | %s |\n", l[0], l[1])
	}
	rep := Report{Ratios: r.Goals}
	rep.writeTail(w, "- ")
	return nil
}

// WriteJSON writes the result as indented JSON.
func (r *IdleResult) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	return nil
}
