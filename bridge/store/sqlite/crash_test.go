package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// crashDirEnv, when set, turns TestHelperProcess into the appender that TestCrashDurability kills.
const crashDirEnv = "BFBRIDGE_SQLITE_CRASH_DIR"

// TestHelperProcess is not a test: run by TestCrashDurability in a child process, it appends to
// the conversation "crash" from several goroutines until it is killed, and prints
// "ack <seq> <text>" for each append only after Append has returned.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashDurability")
	}
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	if _, _, err = s.CreateConversation(ctx, conv("crash")); err != nil {
		fmt.Fprintln(os.Stderr, "put:", err)
		os.Exit(2)
	}
	round := os.Getenv(crashDirEnv + "_ROUND")
	var mu sync.Mutex // one line per write(2), so a line is whole or absent
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				text := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				seq, _, err := add(s, "crash", bridge.RoleCustomer, msg(text), "")
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				mu.Lock()
				os.Stdout.WriteString(fmt.Sprintf("ack %d %s\n", seq, text))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrashDurability kills an appending process with SIGKILL in mid-stream, three times over
// the same database, and checks after each crash that every append the process acknowledged is
// in the log with its content, and that the log has no gaps. A SIGKILL loses what the process
// had not yet handed to the kernel, so it proves the store acknowledges only committed writes;
// synchronous=FULL (checked by TestOpen) is what carries the same promise across a power loss.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	acked := map[int64]string{}
	for round := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashDirEnv+"_ROUND="+strconv.Itoa(round))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())

		// Kill it after a few hundred acknowledgements, or after 10s, whichever is first.
		killAt := 200 + 150*round
		timer := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ack" {
				continue
			}
			seq, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			_, seen := acked[seq]
			require.False(t, seen, "seq %d acknowledged twice", seq)
			acked[seq] = f[2]
			if n++; n == killAt {
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			}
		}
		timer.Stop()
		err = cmd.Wait()
		cancel()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
		require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "stderr: %s", stderr.String())
		require.GreaterOrEqual(t, n, 50, "the child acknowledged too little before the kill; stderr: %s", stderr.String())

		s, err := Open(context.Background(), Options{Dir: dir})
		require.NoError(t, err)
		recs, err := s.Since(context.Background(), "crash", -1, 0)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		for i, r := range recs {
			require.Equal(t, int64(i), r.Seq, "the log has a gap")
			require.Equal(t, bridge.FormatActivityID("crash", r.Seq), r.Activity.ID)
		}
		got := make(map[int64]string, len(recs))
		for _, r := range recs {
			got[r.Seq] = r.Activity.Text
		}
		for seq, text := range acked {
			require.Contains(t, got, seq, "acknowledged seq %d lost", seq)
			require.Equal(t, text, got[seq], "seq %d", seq)
		}
		t.Logf("round %d: %d acknowledged in all, %d in the log", round, len(acked), len(recs))
	}
}
