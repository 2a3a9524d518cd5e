package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// Entry is one record as written to the audit file: the record and its JSON line,
// without the newline. An index stores Line as it is, rather than encoding the
// record a second time.
type Entry struct {
	Record Record
	Line   []byte
}

// Position is how far into the audit files an index has got: the end of the last
// line it holds. The zero Position is before the first line of the oldest file.
type Position struct {
	// File identifies the file the last indexed line is in, whatever its name is
	// now (audit.jsonl, or audit.jsonl.N after rotation): a hash of the file's
	// first line. Empty before any line was indexed.
	File string
	// Offset is the byte offset in File just after the last indexed line. A
	// negative Offset stands for an index kept by a clawbox that did not record
	// positions: it holds an unknown part of the files, and catch-up takes
	// everything in them as indexed.
	Offset int64
}

// LineIndex is an Index that stores the encoded lines, and with each batch, in the
// same transaction, the Position the batch reaches in the audit files. The writer
// uses it instead of InsertAudit, and catches up from that position when it starts
// and after a failed insert, so that every record written to the file is indexed
// exactly once, a crash between the two included. *store.DB implements it.
type LineIndex interface {
	Index
	// InsertAuditLines stores the entries, in order, and records pos as the
	// index's position, in one transaction; or does neither.
	InsertAuditLines(ctx context.Context, entries []Entry, pos Position) error
	// AuditPosition returns the position recorded by the last InsertAuditLines,
	// the zero Position if there was none.
	AuditPosition(ctx context.Context) (Position, error)
}

// Limits of the audit file reader.
const (
	// fileIDBytes bounds the part of a file's first line that identifies it.
	fileIDBytes = 4096
	// maxLineBytes bounds a line catch-up decodes: a record is at most a few
	// KiB (see the field caps); a longer line is not one of the writer's.
	maxLineBytes = 256 << 10
)

// fileID returns the identity of a file whose first line (without its newline) is
// first: a hash of at most fileIDBytes of it.
func fileID(first []byte) string {
	sum := sha256.Sum256(first[:min(len(first), fileIDBytes)])
	return hex.EncodeToString(sum[:16])
}

// readFileID returns the identity of the file at path from its first line, "" when
// the file is empty or does not exist.
func readFileID(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, fileIDBytes+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	if n == 0 {
		return "", nil
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i]
	}
	return fileID(buf), nil
}

// auditFile is one of the audit files, as catch-up sees it.
type auditFile struct {
	path string
	id   string // "" for an empty file
	size int64
}

// files returns the existing audit files, oldest first: audit.jsonl.N to .1, then
// the live file.
func (w *Writer) files() ([]auditFile, error) {
	var out []auditFile
	for i := w.cfg.MaxFiles; i >= 0; i-- {
		p := w.Path()
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			continue
		}
		id, err := readFileID(p)
		if err != nil {
			return nil, err
		}
		out = append(out, auditFile{path: p, id: id, size: st.Size()})
	}
	return out, nil
}

// catchUpStep is how many batches one catch-up step inserts before the writer
// goroutine turns to the records queued meanwhile: a long catch-up (a large backlog
// after a crash) goes on between batches of new records instead of holding them
// until the queue overflows.
const catchUpStep = 4

// catchUp inserts into the line index the complete lines of the audit files past
// the index's position, in batches of Config.BatchSize, each with the position it
// reaches, and stops after steps batches (done false: more is left; the index's
// position says where the next call goes on). A line that is not a record (one torn
// by a crash, ended by openFile) is skipped, logged and counted. A last line without
// its newline is left for later: the writer may still be writing it. The caller owns
// the files (the writer goroutine, or New before it starts).
func (w *Writer) catchUp(ctx context.Context, steps int) (done bool, err error) {
	pos, err := w.lines.AuditPosition(ctx)
	if err != nil {
		return false, err
	}
	files, err := w.files()
	if err != nil {
		return false, fmt.Errorf("catch-up: %w", err)
	}
	if pos.Offset < 0 {
		// The index was kept by a clawbox before positions: it is taken to hold
		// what the files hold. From now on it has a position.
		end := Position{}
		for _, f := range files {
			if f.id != "" {
				end = Position{File: f.id, Offset: f.size}
			}
		}
		w.log.Info("audit: the index has no position in the audit files yet; taking it as complete", "file", w.Path(), "offset", end.Offset)
		return true, w.insertLines(ctx, nil, end)
	}
	start, offset := 0, int64(0)
	if pos.File != "" {
		start = -1
		for i := len(files) - 1; i >= 0; i-- {
			if files[i].id == pos.File {
				start, offset = i, pos.Offset
				break
			}
		}
		switch {
		case start < 0:
			// Rotated out (or deleted) before it was indexed: every file left is
			// newer than the position.
			w.log.Warn("audit: the file the index had reached is gone; indexing every audit file", "dir", w.cfg.Dir)
			start = 0
		case offset > files[start].size:
			w.log.Warn("audit: an audit file is shorter than the index's position in it; skipping it", "file", files[start].path, "size", files[start].size, "offset", offset)
			start, offset = start+1, 0
		}
	}
	for _, f := range files[start:] {
		if f.id == "" {
			continue
		}
		if steps, err = w.catchUpFile(ctx, f, offset, steps); err != nil {
			return false, err
		}
		if steps <= 0 {
			return false, nil
		}
		offset = 0
	}
	return true, nil
}

// catchUpFile indexes the complete lines of f from offset on, at most steps batches
// of them, and returns how many steps are left (0: it stopped there).
func (w *Writer) catchUpFile(ctx context.Context, f auditFile, offset int64, steps int) (int, error) {
	if offset == f.size {
		return steps, nil
	}
	file, err := os.Open(f.path)
	if err != nil {
		return steps, fmt.Errorf("catch-up: %w", err)
	}
	defer file.Close()
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		return steps, fmt.Errorf("catch-up: %w", err)
	}
	r := bufio.NewReaderSize(file, 64<<10)
	var batch []Entry
	pos := Position{File: f.id, Offset: offset}
	flushed := pos
	for {
		line, n, err := readLine(r)
		if errors.Is(err, io.EOF) {
			break // no more complete lines (a partial one stays for later)
		}
		if err != nil {
			return steps, fmt.Errorf("catch-up %s: %w", f.path, err)
		}
		at := pos.Offset
		pos.Offset += n
		rec, ok := decodeLine(line)
		if !ok {
			w.m.skipped.Inc()
			w.log.Warn("audit: skipping a line that is not a record (torn by a crash?)", "file", f.path, "offset", at, "bytes", n)
			continue
		}
		batch = append(batch, Entry{Record: rec, Line: bytes.Clone(line)})
		if len(batch) == w.cfg.BatchSize {
			if err := w.insertLines(ctx, batch, pos); err != nil {
				return steps, err
			}
			batch, flushed = batch[:0], pos
			if steps--; steps <= 0 {
				return 0, nil
			}
		}
	}
	if len(batch) > 0 || pos != flushed {
		// The rest, or only skipped lines: the position moves past them too.
		return steps - 1, w.insertLines(ctx, batch, pos)
	}
	return steps, nil
}

// insertLines inserts one batch with its own IndexTimeout.
func (w *Writer) insertLines(ctx context.Context, batch []Entry, pos Position) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.IndexTimeout)
	defer cancel()
	return w.lines.InsertAuditLines(ctx, batch, pos)
}

// readLine returns the next complete line of r without its newline, and how many
// bytes it took with the newline. A line longer than maxLineBytes is returned
// empty (it is not a record). io.EOF means no complete line is left.
func readLine(r *bufio.Reader) ([]byte, int64, error) {
	chunk, err := r.ReadSlice('\n')
	switch {
	case err == nil:
		return chunk[:len(chunk)-1], int64(len(chunk)), nil
	case errors.Is(err, bufio.ErrBufferFull):
	case errors.Is(err, io.EOF):
		return nil, 0, io.EOF
	default:
		return nil, 0, err
	}
	// Longer than the buffer: assembled, up to maxLineBytes, then only counted.
	long := append([]byte(nil), chunk...)
	n := int64(len(chunk))
	for {
		chunk, err = r.ReadSlice('\n')
		n += int64(len(chunk))
		if long != nil {
			long = append(long, chunk...)
			if len(long) > maxLineBytes+1 {
				long = nil
			}
		}
		switch {
		case err == nil:
			if long == nil {
				return nil, n, nil
			}
			return long[:len(long)-1], n, nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil, 0, io.EOF
		default:
			return nil, 0, err
		}
	}
}

// decodeLine decodes one line of an audit file; ok is false when it is not a record.
func decodeLine(line []byte) (Record, bool) {
	var r Record
	if len(line) == 0 || line[0] != '{' {
		return r, false
	}
	if err := json.Unmarshal(line, &r); err != nil || r.Time.IsZero() || r.Kind == "" {
		return Record{}, false
	}
	return r, true
}
