package load

import (
	"strconv"
	"sync"

	"github.com/gorilla/websocket"
)

// Send states, per send of a conversation.
const (
	stSent   uint8 = 1 << iota // numbered and handed to a sender
	stAcked                    // the server acknowledged it (HTTP 200, or the relay's write went through)
	stFailed                   // the server refused it or the request failed
)

// conv is one conversation of the generator.
type conv struct {
	idx   int
	user  string
	id    string // the server's conversation id
	token string
	ws    *websocket.Conn
	wmu   sync.Mutex // one writer at a time on ws (the relay)

	mu         sync.Mutex
	status     []uint8 // per send n: stSent, stAcked, stFailed
	recv       []uint8 // per send n: replies seen (saturating)
	phaseStart int     // the first n of the current phase
	watermark  string  // polling: the last watermark the server gave
	broken     bool    // the stream failed; no more sends

	replied chan struct{} // a first reply arrived (closed-loop wake-up)
	kick    chan struct{} // poll now
}

func newConv(idx int) *conv {
	return &conv{idx: idx, user: "u" + strconv.Itoa(idx), replied: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
}

// begin numbers a new send.
func (c *conv) begin() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = append(c.status, stSent)
	c.recv = append(c.recv, 0)
	return int64(len(c.status) - 1)
}

// mark adds state bits to send n.
func (c *conv) mark(n int64, bits uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n >= 0 && n < int64(len(c.status)) {
		c.status[n] |= bits
	}
}

// received counts a reply to send n and returns how many it has now; 0 when no such send was made.
func (c *conv) received(n int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n < 0 || n >= int64(len(c.recv)) {
		return 0
	}
	if c.recv[n] < 255 {
		c.recv[n]++
	}
	return int(c.recv[n])
}

// isBroken reports whether the conversation's stream failed.
func (c *conv) isBroken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

func (c *conv) setBroken() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken = true
}

// startPhase marks where the current phase's sends begin.
func (c *conv) startPhase() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phaseStart = len(c.status)
	select { // a wake-up left from the last phase
	case <-c.replied:
	default:
	}
}

// tally is what a phase's sends came to.
type tally struct {
	sent, acked, failed, unsent, replied, lost, duplicated, outstanding int64
}

// count tallies the sends of the current phase. outstanding counts acknowledged sends with no
// reply yet (lost, once the drain is over).
func (c *conv) count(t *tally) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := c.phaseStart; n < len(c.status); n++ {
		st, r := c.status[n], int64(c.recv[n])
		t.sent++
		switch {
		case st&stAcked != 0:
			t.acked++
			if r == 0 {
				t.outstanding++
			}
		case st&stFailed != 0:
			t.failed++
		default:
			t.unsent++
		}
		if r > 0 {
			t.replied++
			t.duplicated += r - 1
		}
	}
	t.lost = t.outstanding
}

// outstanding returns the acknowledged sends of the phase still waiting for their reply.
func (c *conv) outstanding() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var o int64
	for n := c.phaseStart; n < len(c.status); n++ {
		if c.status[n]&stAcked != 0 && c.recv[n] == 0 {
			o++
		}
	}
	return o
}
