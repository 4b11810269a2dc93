package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/bridge"
)

// ackDirEnv, when set, turns TestAckHelperProcess into the process that TestCrashAcks kills;
// ackUpToEnv is the last seq it acknowledges.
const (
	ackDirEnv  = "BFBRIDGE_SQLITE_ACK_DIR"
	ackUpToEnv = "BFBRIDGE_SQLITE_ACK_UP_TO"
	ackRecords = 50
)

// ackSettle is how long the helper waits after its last Ack before it reports it settled: ten
// times DefaultAckWait, well past the bound the package doc gives.
const ackSettle = 10 * DefaultAckWait

// TestAckHelperProcess is not a test: run by TestCrashAcks in a child process, it appends
// ackRecords records addressed to the leg "bot", acknowledges them one by one up to
// $BFBRIDGE_SQLITE_ACK_UP_TO, and with no write after, waits ackSettle, prints "settled <seq>"
// and waits to be killed.
func TestAckHelperProcess(t *testing.T) {
	dir := os.Getenv(ackDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashAcks")
	}
	upTo, err := strconv.ParseInt(os.Getenv(ackUpToEnv), 10, 64)
	exitOn(err, "ack up to")
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir})
	exitOn(err, "open")
	_, _, err = s.CreateConversation(ctx, conv("acks"))
	exitOn(err, "create")
	for range ackRecords {
		_, _, err := add(s, "acks", bridge.RoleBot, msg("x"), "", "bot")
		exitOn(err, "append")
	}
	for seq := range upTo + 1 {
		exitOn(s.Ack(ctx, "acks", "bot", seq), "ack")
	}
	time.Sleep(ackSettle)
	fmt.Printf("settled %d\n", upTo)
	select {}
}

func exitOn(err error, what string) {
	if err != nil {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(2)
	}
}

// TestCrashAcks kills a process with SIGKILL once its last acknowledgement has had the time the
// package doc gives it to reach the disk, with no write after it to carry it, and checks that
// the cursor survived: delivery resumes after it, not before.
func TestCrashAcks(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, upTo := range []int64{0, 17, ackRecords - 1} {
		t.Run(fmt.Sprint("up to ", upTo), func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAckHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), ackDirEnv+"="+dir, ackUpToEnv+"="+strconv.FormatInt(upTo, 10))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			settled := false
			for sc := bufio.NewScanner(out); sc.Scan(); {
				if sc.Text() == fmt.Sprint("settled ", upTo) {
					settled = true
					require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				}
			}
			err = cmd.Wait()
			require.True(t, settled, "the helper did not settle: %v; stderr: %s", err, stderr.String())

			s := open(t, Options{Dir: dir})
			cur, err := s.Cursor(context.Background(), "acks", "bot")
			require.NoError(t, err)
			require.Equal(t, upTo, cur, "the last cursor acknowledged survived the crash")
			var want []bridge.PendingLeg
			if upTo < ackRecords-1 {
				want = []bridge.PendingLeg{{ConversationID: "acks", Leg: "bot", Cursor: upTo, Last: ackRecords - 1}}
			}
			require.Equal(t, want, mustPending(t, s))
		})
	}
}
