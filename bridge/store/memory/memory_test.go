package memory_test

import (
	"testing"

	"github.com/bfbridge/bfbridge/bridge"
	"github.com/bfbridge/bfbridge/bridge/store/memory"
	"github.com/bfbridge/bfbridge/bridge/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bridge.Store { return memory.New() })
}
