// Package sqlite is the embedded durable bridge.Store: one SQLite file in WAL mode, written by a
// single goroutine that commits in groups with synchronous=FULL, read through a separate pool of
// read-only connections, and swept of expired conversations in the background.
//
// The durability point is the fsync of the write-ahead log: CreateConversation, PutConversation,
// Append, SetTimer, PutValue and PutBlob return only after the transaction holding their write
// has committed, so an acknowledged write survives a process crash and a power loss. Many
// concurrent writers share one commit (group commit), which is what makes that affordable.
// Because one goroutine applies every write, the checks that make CreateConversation
// (create-if-absent) and PutConversation (compare-and-swap on Version) atomic are done there.
//
// Ack is the exception: it returns once the cursor is in memory (Cursor and Pending read it at
// once) and the write is queued. A queue holding only acks does not start a transaction at
// once: the acks ride the next commit of any other write, or are committed on their own once
// Options.AckWait (5ms by default) has passed without one. An acknowledged cursor is thus on
// disk at most AckWait plus the commit in progress and its own after Ack returns (a few
// milliseconds more on a local disk); a crash within that window makes a leg be delivered again,
// under the same ids, what it had been delivered in it, and never less.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)

	"github.com/bfbridge/bfbridge/bridge"
)

// FileName is the name of the database file inside Options.Dir.
const FileName = "bridge.db"

// lockName is the file whose lock keeps a second store out of the directory.
const lockName = "bridge.lock"

// Defaults of Options.
const (
	DefaultTTL        = 24 * time.Hour
	DefaultBatchMax   = 512
	DefaultBatchWait  = 0
	DefaultSweepEvery = time.Minute
	DefaultBusyWait   = 5 * time.Second
	DefaultAckWait    = 5 * time.Millisecond
)

// Errors of the store, matched with errors.Is.
var (
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("sqlite store: closed")
	// ErrLocked is returned by Open when another store (in this process or another) has the
	// data directory open.
	ErrLocked = errors.New("data directory in use by another store")
)

// Options configures a Store.
type Options struct {
	// Dir is the data directory; the database is the file "bridge.db" inside it. Dir is created
	// with mode 0700 when it does not exist. One store at a time may have it open (Open takes
	// an advisory lock on "bridge.lock" in it). Required.
	Dir string
	// TTL is how long a conversation may go without being written (CreateConversation,
	// PutConversation or Append) before the sweep removes it with everything it owns: its legs,
	// log, idempotency keys, cursors, addressed marks, timers, values and files. 0 means DefaultTTL (24h, the
	// Direct Line replay and dedupe window); a negative TTL keeps everything forever. A
	// conversation is kept at least TTL after its last write and removed at most
	// TTL + min(TTL/100, 1 minute) + SweepEvery after it, because appends refresh the stored
	// write time only once per min(TTL/100, 1 minute).
	TTL time.Duration
	// SweepEvery is how often the TTL sweep runs. 0 means DefaultSweepEvery (1 minute).
	SweepEvery time.Duration
	// BatchMax caps the writes committed in one transaction. 0 means DefaultBatchMax (512).
	BatchMax int
	// BatchWait is how long the writer waits for more writes once it holds at least one and the
	// queue is empty, before it commits. 0 means DefaultBatchWait: no wait, because writes that
	// arrive during a commit are batched into the next one anyway; a small wait (say 200µs)
	// trades latency at low load for fewer fsyncs at medium load.
	BatchWait time.Duration
	// AckWait bounds how long acknowledged cursors wait for another write to share its commit
	// before the writer commits them alone (see the package doc). 0 means DefaultAckWait (5ms);
	// a negative AckWait commits them at once.
	AckWait time.Duration
	// BusyWait is SQLite's busy_timeout, for when another process holds the file. 0 means
	// DefaultBusyWait (5s).
	BusyWait time.Duration
	// Clock returns the current time; nil means time.Now. It stamps records and drives the TTL.
	Clock func() time.Time
	// Log receives the store's own events (sweeps, failed commits), as the caller names them
	// (the bridge: component=store, store=sqlite). The zero value logs nothing.
	Log zerolog.Logger
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("sqlite store: no data directory")
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = DefaultSweepEvery
	}
	if o.BatchMax <= 0 {
		o.BatchMax = DefaultBatchMax
	}
	if o.BatchWait < 0 {
		o.BatchWait = 0
	}
	switch {
	case o.AckWait == 0:
		o.AckWait = DefaultAckWait
	case o.AckWait < 0:
		o.AckWait = 0
	}
	if o.BusyWait <= 0 {
		o.BusyWait = DefaultBusyWait
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return nil
}

// Store is the SQLite bridge.Store. It is safe for concurrent use. The activity and addressees
// handed to Append are kept in memory while the record is among its conversation's last few
// (see cache), and handed to live readers: as the contract says, the caller must not change them.
//
// Besides SQLite's page cache, a Store keeps in memory, per conversation read or written since Open
// and not yet swept, its last sequence number, the conversation, its cursors and, while it is
// active, its last few records, so that appends, conversation lookups, Last, Watch and live
// readers' Since do not read the disk (see cache).
//
// Ack, SetTimer, PutValue (but for the bridge's own values) and PutBlob return
// ErrUnknownConversation for a conversation that does not exist. As in the memory store, a leg
// stays indexed to the first conversation that had it until that one is swept: a later
// PutConversation that no longer lists it, or lists a leg another conversation holds, does not
// move it.
type Store struct {
	opts       Options
	touchEvery time.Duration // how stale a conversation's stored write time may get (see Options.TTL)
	log        zerolog.Logger
	unlock     func() error // releases the data directory
	wdb        *sql.DB      // one connection, used only by the writer goroutine
	rdb        *sql.DB      // read-only pool
	w          writeStmts
	r          readStmts

	queue                   chan *request
	closeMu                 sync.RWMutex // held for reading while enqueueing; Close takes it to stop new writes
	closed                  bool
	quit                    chan struct{}
	writerDone, sweeperDone chan struct{}
	closeOnce               sync.Once
	closeErr                error

	cache cache
	stats struct{ writes, txs, swept, failed atomic.Uint64 }
}

var _ bridge.Store = (*Store)(nil)

// Stats counts what the writer has done since Open.
type Stats struct {
	Writes       uint64 // requests applied: appends, conversation writes, acks, timers, values, files, sweep steps
	Transactions uint64 // transactions committed; Writes/Transactions is the mean group size
	Failed       uint64 // transactions that failed to commit
	Swept        uint64 // conversations removed by the TTL sweep
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Writes:       s.stats.writes.Load(),
		Transactions: s.stats.txs.Load(),
		Failed:       s.stats.failed.Load(),
		Swept:        s.stats.swept.Load(),
	}
}

// Open opens (creating when needed) the database in opts.Dir, brings its schema up to date and
// starts the writer and the TTL sweep. Close stops them.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: data directory: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(opts.Dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: data directory: %w", err)
	}
	unlock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s, err := openLocked(ctx, opts, path)
	if err != nil {
		_ = unlock()
		return nil, err
	}
	s.unlock = unlock
	return s, nil
}

// openLocked opens the database at path, once the directory is locked.
func openLocked(ctx context.Context, opts Options, path string) (*Store, error) {
	var err error
	s := &Store{
		opts:        opts,
		log:         opts.Log, // its caller names the component
		queue:       make(chan *request, opts.BatchMax),
		quit:        make(chan struct{}),
		writerDone:  make(chan struct{}),
		sweeperDone: make(chan struct{}),
		cache:       cache{m: map[string]*entry{}, byLeg: map[string]string{}},
		touchEvery:  min(opts.TTL/100, time.Minute),
	}
	busy := fmt.Sprint(opts.BusyWait.Milliseconds())
	s.wdb, err = sql.Open("sqlite", dsn(path, url.Values{
		"_busy_timeout": {busy}, "_journal_mode": {"WAL"}, "_synchronous": {"FULL"}, "_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	// One connection, never recycled: the writer goroutine is its only user.
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	if err := s.setUp(ctx, path); err != nil {
		s.wdb.Close()
		return nil, err
	}
	s.rdb, err = sql.Open("sqlite", dsn(path, url.Values{"_busy_timeout": {busy}, "_query_only": {"1"}}))
	if err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("sqlite store: open %s for reading: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.rdb.SetMaxOpenConns(readers)
	s.rdb.SetMaxIdleConns(readers)
	if err := s.r.prepare(ctx, s.rdb); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, err
	}
	go s.writer()
	if opts.TTL > 0 {
		go s.sweeper()
	} else {
		close(s.sweeperDone)
	}
	s.log.Debug().Str("path", path).Dur("ttl", opts.TTL).Int("batch_max", opts.BatchMax).Msg("store opened")
	return s, nil
}

// dsn builds a modernc.org/sqlite data source name for the file at path.
func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// Close stops the TTL sweep, lets the writer commit every write already queued, checkpoints the
// write-ahead log and closes the database. Calls made after Close return ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closed = true
		s.closeMu.Unlock()
		close(s.quit)
		<-s.sweeperDone
		<-s.writerDone
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.BusyWait)
		defer cancel()
		if _, err := s.wdb.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			s.log.Warn().Err(err).Msg("checkpoint on close failed")
		}
		s.r.close()
		s.w.close()
		s.closeErr = errors.Join(s.rdb.Close(), s.wdb.Close(), s.unlock())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlite store: close: %w", s.closeErr)
		}
		s.cache.closeAll()
	})
	return s.closeErr
}
