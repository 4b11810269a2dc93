package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Percentiles are latencies in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	N    uint64  `json:"samples"`
}

// Row is one phase of one run.
type Row struct {
	Target        string  `json:"target"`
	Mode          string  `json:"mode"`
	Bot           string  `json:"bot"`
	Phase         string  `json:"phase"`
	Conversations int     `json:"conversations"`
	Instances     int     `json:"instances,omitempty"` // bridge processes (bridge-redis)
	Rate          float64 `json:"offered_per_s"`       // open loop; 0 for the closed loop
	Window        float64 `json:"window_s"`            // the measured part of the phase (after warm-up)

	// Sends of the phase: acknowledged by the server, refused or failed, never made (the
	// phase ended with them queued), answered, lost (acknowledged, never answered) and
	// answered more than once.
	Sent       int64 `json:"sent"`
	Acked      int64 `json:"acked"`
	Failed     int64 `json:"failed"`
	Unsent     int64 `json:"unsent"`
	Replied    int64 `json:"replied"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	Unknown    int64 `json:"unknown"` // replies to sends never made
	// LateOnStream counts replies a websocket stream had not delivered by the end of the
	// drain that the server's history (GET /activities) had: late, not lost.
	LateOnStream int64 `json:"late_on_stream,omitempty"`
	// Resends and Reconnects are a cluster's sends tried again on another instance (same
	// clientActivityID) and streams opened again from their watermark.
	Resends    int64            `json:"resends,omitempty"`
	Reconnects int64            `json:"reconnects,omitempty"`
	Errors     map[string]int64 `json:"errors,omitempty"`

	Throughput float64 `json:"replies_per_s"`    // replies arriving per second in the window
	SendRate   float64 `json:"sends_per_s"`      // sends acknowledged per second in the window
	Activities float64 `json:"activities_per_s"` // activities the client received per second (own echoes included)
	Polls      float64 `json:"polls_per_s,omitempty"`

	// Latency is from a send's due time to its reply's arrival; AckLatency to the server's
	// acknowledgement; LagP99 is how late the generator started sends (open loop).
	Latency    Percentiles `json:"latency"`
	AckLatency Percentiles `json:"ack_latency"`
	LagP99     float64     `json:"send_lag_p99_ms"`

	ServerCPUPerReply float64 `json:"server_cpu_us_per_reply,omitempty"`
	ServerCores       float64 `json:"server_cores,omitempty"`
	ServerRSSMiB      float64 `json:"server_rss_mib,omitempty"`
	GeneratorCores    float64 `json:"generator_cores"`

	Skipped string `json:"skipped,omitempty"` // why the run did not happen
}

// Name is the run's label: target, mode and bot.
func (r Row) Name() string {
	s := r.Target
	if r.Instances > 1 {
		s += fmt.Sprintf("×%d", r.Instances)
	}
	s += " " + r.Mode
	if r.Bot != BotNone && r.Bot != "" {
		s += " (" + r.Bot + " bot)"
	}
	return s
}

// ErrorCount is the total of Errors.
func (r Row) ErrorCount() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// Ratio compares two rows, or a row with a goal.
type Ratio struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"` // "x", "%" or "ms"
	Goal  string  `json:"goal,omitempty"`
	Met   *bool   `json:"met,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model,omitempty"`
	MemoryGiB  int    `json:"memory_gib,omitempty"`
	Kernel     string `json:"kernel,omitempty"`
	Go         string `json:"go"`
	OpenFiles  uint64 `json:"open_files_limit,omitempty"`
	LoadBefore string `json:"load_before,omitempty"` // /proc/loadavg at the start
	LoadAfter  string `json:"load_after,omitempty"`
}

// Report is the outcome of "bridge load".
type Report struct {
	Started  time.Time `json:"started"`
	Command  string    `json:"command,omitempty"`
	Machine  Machine   `json:"machine"`
	Duration float64   `json:"phase_duration_s"`
	Warmup   float64   `json:"warmup_s"`
	Rows     []Row     `json:"rows"`
	Ratios   []Ratio   `json:"ratios,omitempty"`
	Notes    []string  `json:"notes,omitempty"`
}

// describeMachine reads what /proc says about this machine.
func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OpenFiles: openFilesLimit()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = int((kb + 1<<19) >> 20)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadBefore = loadAverage()
	return m
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

func (r *Report) header() []string {
	return []string{"run", "phase", "conv", "sends/s", "replies/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
		"lost", "dup", "errors", "server µs/reply", "server cores", "server RSS MiB", "generator cores"}
}

func (r *Report) cells(row Row) []string {
	if row.Skipped != "" {
		return []string{row.Name(), row.Phase, "–", "skipped: " + row.Skipped}
	}
	phase := row.Phase
	if row.Rate > 0 {
		phase = fmt.Sprintf("%s %s/s", row.Phase, compact(row.Rate))
	} else if row.Phase == PhaseMax {
		phase = "max (closed loop)"
	}
	opt := func(v float64, f string) string {
		if v == 0 {
			return "–"
		}
		return fmt.Sprintf(f, v)
	}
	return []string{
		row.Name(), phase, fmt.Sprint(row.Conversations), compact(row.SendRate), compact(row.Throughput),
		fmt.Sprintf("%.2f", row.Latency.P50), fmt.Sprintf("%.2f", row.Latency.P99), fmt.Sprintf("%.2f", row.Latency.P999),
		fmt.Sprintf("%.1f", row.Latency.Max), fmt.Sprint(row.Lost), fmt.Sprint(row.Duplicated), errorSummary(row),
		opt(row.ServerCPUPerReply, "%.0f"), opt(row.ServerCores, "%.2f"), opt(row.ServerRSSMiB, "%.0f"), fmt.Sprintf("%.2f", row.GeneratorCores),
	}
}

// compact writes 12345.6 as 12.3k and 123.4 as 123.
func compact(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func errorSummary(row Row) string {
	n := row.ErrorCount() + row.Failed + row.Unsent + row.Unknown + row.LateOnStream + row.Resends + row.Reconnects
	if n == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(row.Errors)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, row.Errors[k]))
	}
	if row.Unsent > 0 {
		parts = append(parts, fmt.Sprintf("unsent ×%d", row.Unsent))
	}
	if row.Unknown > 0 {
		parts = append(parts, fmt.Sprintf("unknown replies ×%d", row.Unknown))
	}
	if row.LateOnStream > 0 {
		parts = append(parts, fmt.Sprintf("late on the stream (in the history) ×%d", row.LateOnStream))
	}
	if row.Resends > 0 || row.Reconnects > 0 {
		parts = append(parts, fmt.Sprintf("resent on another instance ×%d, streams reconnected ×%d", row.Resends, row.Reconnects))
	}
	return strings.Join(parts, "; ")
}

func (r *Report) ratioLine(x Ratio) string {
	v := fmt.Sprintf("%.2f%s", x.Value, x.Unit)
	switch x.Unit {
	case "%":
		v = fmt.Sprintf("%.0f%%", x.Value)
	case " ms":
		v = fmt.Sprintf("%.2f ms", x.Value)
	}
	s := fmt.Sprintf("%s: %s", x.Name, v)
	if x.Goal != "" {
		verdict := ""
		if x.Met != nil {
			verdict = map[bool]string{true: " — met", false: " — missed"}[*x.Met]
		}
		s += fmt.Sprintf(" (goal %s%s)", x.Goal, verdict)
	}
	return s
}

// WriteText writes the table, the ratios and the notes for a terminal.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.header(), "\t"))
	for _, row := range r.Rows {
		fmt.Fprintln(tw, strings.Join(r.cells(row), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	r.writeTail(w, "")
	return nil
}

// WriteMarkdown writes the machine, the table, the ratios and the notes as Markdown.
func (r *Report) WriteMarkdown(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "Machine: %d CPUs (%s), %d GiB, Linux %s, %s, open files %d; load average before %s, after %s.\n",
		m.CPUs, orDefault(m.CPUModel, "unknown model"), m.MemoryGiB, m.Kernel, m.Go, m.OpenFiles, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(w, "Each phase %.0fs, the first %.0fs left out as warm-up. Run %s.\n\n", r.Duration, r.Warmup, r.Started.UTC().Format(time.RFC3339))
	if r.Command != "" {
		fmt.Fprintf(w, "```\n%s\n```\n\n", r.Command)
	}
	h := r.header()
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(h, " | "), strings.Repeat("---|", len(h)))
	for _, row := range r.Rows {
		c := r.cells(row)
		for len(c) < len(h) {
			c = append(c, "")
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
	}
	r.writeTail(w, "- ")
	return nil
}

func (r *Report) writeTail(w io.Writer, bullet string) {
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w)
		for _, x := range r.Ratios {
			fmt.Fprintln(w, bullet+r.ratioLine(x))
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintln(w, bullet+n)
		}
	}
}
