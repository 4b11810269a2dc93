//go:build !linux

package load

import (
	"errors"
	"os/exec"
	"time"
)

var errNoProc = errors.New("process statistics need Linux's /proc")

func procCPU(int) (time.Duration, error) { return 0, errNoProc }
func procStatus(int) (int64, int, error) { return 0, 0, errNoProc }
func processSampler(int) sampler         { return nil }
func selfCPU() time.Duration             { return 0 }
func dieWithParent(*exec.Cmd)            {}

func openFilesLimit() uint64 { return 0 }
