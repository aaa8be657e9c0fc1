package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// A large group writes its transfers and postings with COPY instead of
// INSERT … SELECT FROM unnest(…): the server then inserts the heap rows a
// page at a time (one WAL record per page instead of one per row) and does
// not unpack arrays or project rows: 17–19 % less WAL per transfer in
// groups of 16 to 256, and in groups of 256 about a quarter less database
// CPU (BenchmarkGroup, docs/benchmarks.md).
// COPY cannot join the group's pipeline, so it costs one more round trip
// (both COPY commands share it, see copyRows); a group of a few transfers,
// written when load is light, keeps the one-round-trip INSERTs.
const defaultCopyMin = 16

// The columns COPY writes, in the order encodeTransfers and encodePostings
// encode them.
const (
	copyTransfersSQL = `COPY ledger_transfers (seq, id, code, kind, pending_seq, reverses_seq, expires_at, content_hash, metadata, created_at) FROM STDIN (FORMAT binary)`
	copyPostingsSQL  = `COPY ledger_postings (transfer_seq, idx, account_seq, debits_posted, credits_posted, debits_pending, credits_pending, created_at) FROM STDIN (FORMAT binary)`
)

// copyRows writes the group's transfers and postings with COPY, both in
// one round trip. A transfer id already taken is errIDsTaken, as for the
// INSERT.
//
// pgconn's CopyFrom takes a round trip per COPY, and a goroutine and three
// writes to the socket each; here both COPY commands and their data go out
// in one write and their results are read after. The protocol allows it:
// the server reads a simple-query COPY's data from the stream that follows
// it, and when a COPY fails it drops the rest of that COPY's data; the
// second COPY then fails too (the transaction is aborted) and nothing is
// written.
func (w *groupWrite) copyRows(ctx context.Context, conn *pgx.Conn) error {
	enc := copyEncoders.Get().(*copyEncoder)
	defer copyEncoders.Put(enc) // written and done with when roundTrip returns
	enc.buf.Reset()
	enc.beginCopy(copyTransfersSQL)
	w.encodeTransfers(enc)
	enc.endCopy()
	enc.beginCopy(copyPostingsSQL)
	w.encodePostings(enc)
	enc.endCopy()
	tags, err := roundTrip(ctx, conn.PgConn(), enc.buf.Bytes(), 2)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return errIDsTaken
	}
	if err != nil {
		return fmt.Errorf("write group: copy: %w", err)
	}
	if err := copied(tags[0], len(w.tSeq)); err != nil {
		return fmt.Errorf("write group: copy transfers: %w", err)
	}
	if err := copied(tags[1], len(w.pTransfer)); err != nil {
		return fmt.Errorf("write group: copy postings: %w", err)
	}
	return nil
}

func (w *groupWrite) encodeTransfers(enc *copyEncoder) {
	for i := range w.tSeq {
		enc.row(10)
		enc.int8(w.tSeq[i])
		enc.text(w.tID[i])
		enc.text(w.tCode[i])
		enc.text(w.tKind[i])
		enc.int8Ptr(w.tPendingSeq[i])
		enc.int8Ptr(w.tReversesSeq[i])
		enc.timePtr(w.tExpires[i])
		enc.bytes(w.tHash[i])
		enc.jsonb(w.tMetadata[i])
		enc.time(w.now)
	}
}

func (w *groupWrite) encodePostings(enc *copyEncoder) {
	for i := range w.pTransfer {
		enc.row(8)
		enc.int8(w.pTransfer[i])
		enc.int2(w.pIdx[i])
		enc.int8(w.pAccount[i])
		enc.int8(w.pDP[i])
		enc.int8(w.pCP[i])
		enc.int8(w.pDPE[i])
		enc.int8(w.pCPE[i])
		enc.time(w.now)
	}
}

// roundTrip writes msgs, n simple queries in the wire protocol, straight
// to the connection and reads their results: each one's command tag, and
// the first error the server gave. The messages bypass the frontend's
// buffer, which would copy them and shrink again after every write. A
// failure to write or read leaves the connection in an unknown state, so
// it is closed (the pool then discards it).
func roundTrip(ctx context.Context, pc *pgconn.PgConn, msgs []byte, n int) ([]pgconn.CommandTag, error) {
	nc := pc.Conn()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetWriteDeadline(dl)
		defer nc.SetWriteDeadline(time.Time{})
	}
	if _, err := nc.Write(msgs); err != nil {
		_ = pc.Close(context.Background())
		return nil, err
	}
	tags := make([]pgconn.CommandTag, n)
	var first error
	for q := 0; q < n; {
		msg, err := pc.ReceiveMessage(ctx)
		if err != nil {
			_ = pc.Close(context.Background())
			return nil, err
		}
		switch msg := msg.(type) {
		case *pgproto3.CommandComplete:
			tags[q] = pgconn.NewCommandTag(string(msg.CommandTag))
		case *pgproto3.ErrorResponse:
			if first == nil {
				first = pgconn.ErrorResponseToPgError(msg)
			}
		case *pgproto3.ReadyForQuery:
			q++
		}
	}
	return tags, first
}

func copied(tag pgconn.CommandTag, want int) error {
	if tag.RowsAffected() != int64(want) {
		return fmt.Errorf("copied %d rows, want %d", tag.RowsAffected(), want)
	}
	return nil
}

// copyEncoder writes COPY … FROM STDIN commands with their data in the wire
// protocol: per command a Query message, one CopyData message holding
// PostgreSQL's binary COPY format for the few column types the ledger's rows
// have (a header, then per row the number of fields and each field as its
// length and its binary value, length -1 for NULL, then a trailer), and a
// CopyDone message.
type copyEncoder struct {
	buf  bytes.Buffer
	b    [8]byte
	data int // where the open CopyData message's length is
}

// copyEncoders keeps the encoders' buffers from one group to the next: a
// group's rows take tens to hundreds of kilobytes, which a fresh buffer
// regrew (and copied) several times for every group. A buffer is at most
// what the postings of a group of BatchMax transfers take.
var copyEncoders = sync.Pool{New: func() any { return new(copyEncoder) }}

// postgresEpoch is where timestamptz counts its microseconds from.
var postgresEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// beginCopy writes the Query message of sql, a COPY … FROM STDIN (FORMAT
// binary), and opens its CopyData message with the format's header.
func (e *copyEncoder) beginCopy(sql string) {
	e.buf.WriteByte('Q')
	e.uint32(uint32(4 + len(sql) + 1))
	e.buf.WriteString(sql)
	e.buf.WriteByte(0)
	e.buf.WriteByte('d')
	e.data = e.buf.Len()
	e.uint32(0) // the length, known at endCopy
	e.buf.WriteString("PGCOPY\n\377\r\n\000")
	e.uint32(0) // flags
	e.uint32(0) // header extension length
}

// endCopy writes the format's trailer, closes the CopyData message and
// writes CopyDone.
func (e *copyEncoder) endCopy() {
	e.uint16(0xFFFF) // -1: no more rows
	binary.BigEndian.PutUint32(e.buf.Bytes()[e.data:], uint32(e.buf.Len()-e.data))
	e.buf.WriteByte('c')
	e.uint32(4)
}

func (e *copyEncoder) uint16(v uint16) {
	binary.BigEndian.PutUint16(e.b[:2], v)
	e.buf.Write(e.b[:2])
}

func (e *copyEncoder) uint32(v uint32) {
	binary.BigEndian.PutUint32(e.b[:4], v)
	e.buf.Write(e.b[:4])
}

func (e *copyEncoder) uint64(v uint64) {
	binary.BigEndian.PutUint64(e.b[:8], v)
	e.buf.Write(e.b[:8])
}

func (e *copyEncoder) row(fields int) { e.uint16(uint16(fields)) }
func (e *copyEncoder) null()          { e.uint32(0xFFFFFFFF) }

func (e *copyEncoder) int2(v int16) {
	e.uint32(2)
	e.uint16(uint16(v))
}

func (e *copyEncoder) int8(v int64) {
	e.uint32(8)
	e.uint64(uint64(v))
}

func (e *copyEncoder) int8Ptr(v *int64) {
	if v == nil {
		e.null()
		return
	}
	e.int8(*v)
}

func (e *copyEncoder) text(s string) {
	e.uint32(uint32(len(s)))
	e.buf.WriteString(s)
}

func (e *copyEncoder) bytes(b []byte) {
	e.uint32(uint32(len(b)))
	e.buf.Write(b)
}

// jsonb is a version byte (1) and the JSON text.
func (e *copyEncoder) jsonb(s *string) {
	if s == nil {
		e.null()
		return
	}
	e.uint32(uint32(1 + len(*s)))
	e.buf.WriteByte(1)
	e.buf.WriteString(*s)
}

func (e *copyEncoder) time(t time.Time) {
	e.int8(t.Sub(postgresEpoch).Microseconds())
}

func (e *copyEncoder) timePtr(t *time.Time) {
	if t == nil {
		e.null()
		return
	}
	e.time(*t)
}
