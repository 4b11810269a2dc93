package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// child is a server process the generator started: the bridge, the relay, the echo bot or
// offline-directline.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout lines, until the reader is done with them
	done  chan struct{}

	mu   sync.Mutex
	tail []string // the last lines of output, for error messages

	// goroutines counts the goroutine headers of a stack dump on stderr (SIGQUIT with
	// GOTRACEBACK=all): how the idle measurement counts the bridge's goroutines from outside.
	goroutines atomic.Int64
	// lastGC is the last line of the runtime's GC trace (GODEBUG=gctrace=1), if it prints one.
	lastGC atomic.Pointer[gcTrace]
}

// gcTrace is what one line of the runtime's GC trace says about memory, in MB.
type gcTrace struct {
	HeapLive, HeapGoal, Stacks int64
}

// gcTraceLine matches "…, 4->4->2 MB, 5 MB goal, 0 MB stacks, …" in a "gc N @…" line.
var gcTraceLine = regexp.MustCompile(`^gc \d+ @.* (\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (\d+) MB stacks`)

func parseGCTrace(line string) (gcTrace, bool) {
	m := gcTraceLine.FindStringSubmatch(line)
	if m == nil {
		return gcTrace{}, false
	}
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	return gcTrace{HeapLive: n(m[3]), HeapGoal: n(m[4]), Stacks: n(m[5])}, true
}

// goroutineHeader matches a goroutine's first line in a stack dump, such as
// "goroutine 18 gp=0x… m=nil [select]:". Goroutine 0 lines are the threads' scheduler stacks,
// not goroutines. Runtime goroutines are counted too, and cancel out against the baseline.
var goroutineHeader = regexp.MustCompile(`^goroutine [1-9][0-9]* .*\[`)

// startChild runs exe with args in dir; env is added to the generator's environment, less the
// BRIDGE_* variables, which would override the child's configuration file.
func startChild(name, exe string, args []string, dir string, env []string) (*child, error) {
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	dieWithParent(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ch := &child{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 64), done: make(chan struct{})}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		ch.scan(stdout, func(line string) {
			select { // lines nobody waits for are dropped (offline-directline logs every conversation)
			case ch.lines <- line:
			default:
			}
		})
	}()
	go func() {
		defer readers.Done()
		ch.scan(stderr, func(line string) {
			if goroutineHeader.MatchString(line) {
				ch.goroutines.Add(1)
			} else if gc, ok := parseGCTrace(line); ok {
				ch.lastGC.Store(&gc)
			}
		})
	}()
	go func() {
		readers.Wait()
		_ = cmd.Wait()
		close(ch.done)
	}()
	return ch, nil
}

func (ch *child) scan(r io.Reader, each func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		each(line)
		if goroutineHeader.MatchString(line) || strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "gc ") || line == "" {
			continue // stack dumps and GC traces stay out of the tail
		}
		ch.mu.Lock()
		ch.tail = append(ch.tail, line)
		if len(ch.tail) > 20 {
			ch.tail = ch.tail[len(ch.tail)-20:]
		}
		ch.mu.Unlock()
	}
}

// output returns the last lines the child printed.
func (ch *child) output() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return strings.Join(ch.tail, "\n")
}

func (ch *child) pid() int { return ch.cmd.Process.Pid }

// exited reports whether the child is gone.
func (ch *child) exited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// waitLine returns the rest of the first stdout line that starts with prefix.
func (ch *child) waitLine(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line := <-ch.lines:
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return strings.TrimSpace(rest), nil
			}
		case <-ch.done:
			return "", fmt.Errorf("%s exited before it was ready; its output:\n%s", ch.name, ch.output())
		case <-t.C:
			return "", fmt.Errorf("%s was not ready within %s; its output:\n%s", ch.name, timeout, ch.output())
		case <-ctx.Done():
			return "", fmt.Errorf("%s: %w", ch.name, ctx.Err())
		}
	}
}

// stop asks the child to end (SIGTERM, and stdin closed) and kills it after grace.
func (ch *child) stop(grace time.Duration) error {
	if ch.exited() {
		return nil
	}
	_ = ch.stdin.Close()
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	return ch.wait(grace)
}

// signal sends sig and waits at most grace for the child to end, then kills it.
func (ch *child) signal(sig os.Signal, grace time.Duration) error {
	if err := ch.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %w", ch.name, err)
	}
	return ch.wait(grace)
}

func (ch *child) wait(grace time.Duration) error {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-ch.done:
		return nil
	case <-t.C:
		_ = ch.cmd.Process.Kill()
		<-ch.done
		return fmt.Errorf("%s did not stop within %s and was killed", ch.name, grace)
	}
}
