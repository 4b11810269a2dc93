// Package sqlite is the embedded durable bridge.Store: one SQLite file in WAL mode, written by a
// single goroutine that commits in groups with synchronous=FULL, read through a separate pool of
// read-only connections, and swept of expired conversations in the background.
//
// The durability point is the fsync of the write-ahead log: Append, PutConversation and Ack return
// only after the transaction holding their write has committed, so an acknowledged write survives a
// process crash and a power loss. Many concurrent writers share one commit (group commit), which
// is what makes that affordable.
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

// schemaVersion is stored in PRAGMA user_version; Open refuses a file written by a newer schema.
const schemaVersion = 1

// Defaults of Options.
const (
	DefaultTTL        = 24 * time.Hour
	DefaultBatchMax   = 512
	DefaultBatchWait  = 0
	DefaultSweepEvery = time.Minute
	DefaultBusyWait   = 5 * time.Second
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
	// TTL is how long a conversation may go without being written (PutConversation or Append)
	// before the sweep removes it with its legs, log and cursors. 0 means DefaultTTL (24h, the
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
	// BusyWait is SQLite's busy_timeout, for when another process holds the file. 0 means
	// DefaultBusyWait (5s).
	BusyWait time.Duration
	// Clock returns the current time; nil means time.Now. It stamps records and drives the TTL.
	Clock func() time.Time
	// Log receives the store's own events (sweeps, failed commits). The zero value logs nothing.
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
	if o.BusyWait <= 0 {
		o.BusyWait = DefaultBusyWait
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return nil
}

// Store is the SQLite bridge.Store. It is safe for concurrent use. Activities handed to Append
// are not retained: the store keeps their JSON and readers get fresh copies.
//
// Besides SQLite's page cache, a Store keeps in memory, per conversation read or written since Open
// and not yet swept, its last sequence number, the conversation, its cursors and, while it is
// active, its last few records, so that appends, conversation lookups, Last, Watch and live
// readers' Since do not read the disk (see cache).
//
// Ack returns ErrUnknownConversation for a conversation that does not exist (the memory store
// accepts it). As in the memory store, a leg stays indexed to its conversation until that is
// swept, even when a later PutConversation no longer lists it.
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
	Writes       uint64 // requests applied: appends, conversation puts, acks, sweep steps
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
		log:         opts.Log.With().Str("component", "sqlite_store").Logger(),
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

// schema creates the tables. Times are Unix nanoseconds from Options.Clock. There are no foreign
// keys: the sweep deletes a conversation's rows itself, in bounded steps, and a conversation's
// log outlives its row only in purge, until the sweep has removed it.
var schema = []string{
	// conversations: the JSON of bridge.Conversation; updated is the store's time of the last
	// PutConversation or Append, which the TTL is measured from.
	`CREATE TABLE IF NOT EXISTS conversations (
		id      TEXT PRIMARY KEY,
		body    BLOB NOT NULL,
		updated INTEGER NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated)`,
	// legs: every leg a conversation has had, by channel and the channel's conversation id.
	`CREATE TABLE IF NOT EXISTS legs (
		channel         TEXT NOT NULL,
		channel_conv_id TEXT NOT NULL,
		conv_id         TEXT NOT NULL,
		PRIMARY KEY (channel, channel_conv_id)
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS legs_conv ON legs (conv_id)`,
	// log: seq is gapless from 0 per conversation; activity is its JSON with the id set. Rows
	// are in append order (rowid), so a transaction of appends to many conversations writes few
	// data pages; the (conv_id, seq) index serves reads. (Clustering rows by conversation, WITHOUT
	// ROWID, made BenchmarkAppend a third slower for 1,000 conversations.)
	`CREATE TABLE IF NOT EXISTS log (
		rowid     INTEGER PRIMARY KEY,
		conv_id   TEXT NOT NULL,
		seq       INTEGER NOT NULL,
		from_role TEXT NOT NULL,
		activity  BLOB NOT NULL,
		at        INTEGER NOT NULL,
		idem_key  TEXT
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS log_seq ON log (conv_id, seq)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS log_idem ON log (conv_id, idem_key) WHERE idem_key IS NOT NULL`,
	// cursors: per leg, the highest acknowledged seq; it never moves back.
	`CREATE TABLE IF NOT EXISTS cursors (
		conv_id TEXT NOT NULL,
		leg     TEXT NOT NULL,
		seq     INTEGER NOT NULL,
		PRIMARY KEY (conv_id, leg)
	) WITHOUT ROWID`,
	// purge: conversations already removed whose log rows the sweep is still deleting.
	`CREATE TABLE IF NOT EXISTS purge (conv_id TEXT PRIMARY KEY) WITHOUT ROWID`,
	// kv: small named values that channels keep across restarts (PutValue).
	`CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID`,
}

// setUp checks the journal mode, creates or checks the schema and prepares the writer's statements.
func (s *Store) setUp(ctx context.Context, path string) error {
	var mode string
	if err := s.wdb.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("sqlite store: open %s: journal mode is %q, not wal", path, mode)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: schema: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("sqlite store: schema: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("sqlite store: %s has schema version %d, newer than this program's %d", path, version, schemaVersion)
	}
	for _, q := range schema {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlite store: schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("sqlite store: schema: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: schema: %w", err)
	}
	return s.w.prepare(ctx, s.wdb)
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
