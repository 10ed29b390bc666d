package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// DefaultMaxDocumentSize is the largest manifest document accepted unless
// [MaxDocumentSize] says otherwise: 4 MiB, well above etcd's 1.5 MiB object
// limit.
const DefaultMaxDocumentSize = 4 << 20

// DefaultMaxInputSize caps the total input of one ReadManifests or
// DecodeManifests call unless [MaxInputSize] says otherwise: 64 MiB, many
// times the largest real bundles (a full cert-manager or Prometheus operator
// install is a few MiB), yet small enough that an endless input (/dev/zero, a
// pipe that never closes) fails within a second instead of reading forever.
const DefaultMaxInputSize = 64 << 20

// ErrDocumentTooLarge is wrapped by a [*ManifestError] for a document over the
// size cap, or one whose YAML aliases expand past it.
var ErrDocumentTooLarge = errors.New("document too large")

// ErrInputTooLarge is wrapped by a [*ManifestError] when the input of one
// call goes past [MaxInputSize]; reading stops there.
var ErrInputTooLarge = errors.New("input too large")

// ErrNoObjects is wrapped by ReadManifests' error when the paths hold no
// object at all (an empty directory, a file of comments), as kubectl
// fails with "no objects passed to apply".
var ErrNoObjects = errors.New("no objects passed to apply")

// Manifest is one object read from a manifest: a file, a directory's file,
// stdin or a reader.
type Manifest struct {
	// Source is the file's path, "-" for stdin, or the name given to
	// DecodeManifests.
	Source string
	// Index is the document's position in Source, from 1 ("---" separates
	// documents; empty documents count).
	Index int
	// Item is the object's position in a "kind: List" document, from 1; 0
	// when the document is the object itself.
	Item int
	// Object is the decoded object. In a successful [ManifestResult] it is
	// the server's answer; the input manifests are never modified.
	Object *unstructured.Unstructured
}

// String names where the object came from, as errors do:
// `"deploy.yaml" document 2` or `"list.yaml" document 1 item 3`.
func (m Manifest) String() string {
	s := fmt.Sprintf("%q document %d", m.Source, m.Index)
	if m.Item > 0 {
		s += fmt.Sprintf(" item %d", m.Item)
	}
	return s
}

// ManifestError is a problem with one manifest document or object: bad input
// when decoding, an API error when applying or deleting. Err is wrapped, so
// errors.Is(err, ErrDocumentTooLarge) and apierrors.IsNotFound(err) work.
type ManifestError struct {
	Manifest        // where: Source, Index, Item (Object may be nil)
	Err      error  // what went wrong
	Ref      string // "configmaps default/x" once known, else ""
}

// Error names the source and the document.
func (e *ManifestError) Error() string {
	s := "manifest " + e.Manifest.String()
	if e.Ref != "" {
		s += " (" + e.Ref + ")"
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ManifestError) Unwrap() error { return e.Err }

// DecodeOption configures DecodeManifests and ReadManifests.
type DecodeOption interface{ applyDecode(*decodeOptions) }

type decodeOptionFunc func(*decodeOptions)

func (f decodeOptionFunc) applyDecode(o *decodeOptions) { f(o) }

type decodeOptions struct {
	maxDoc    int64
	maxInput  int64
	recursive bool
	stdin     io.Reader

	remaining int64 // of maxInput, for this call
}

// MaxDocumentSize caps one document, in bytes, before and after YAML alias
// expansion (default [DefaultMaxDocumentSize]; must be positive). A larger
// document is an error wrapping [ErrDocumentTooLarge]; reading never holds
// more than about this much of one document in memory.
func MaxDocumentSize(n int64) DecodeOption {
	return decodeOptionFunc(func(o *decodeOptions) { o.maxDoc = n })
}

// MaxInputSize caps, in bytes, everything one DecodeManifests or
// ReadManifests call reads: all files and stdin together (default
// [DefaultMaxInputSize], 64 MiB; must be positive). Reading stops at the cap
// with a [*ManifestError] naming the source and wrapping [ErrInputTooLarge];
// the objects decoded before it are returned.
func MaxInputSize(n int64) DecodeOption {
	return decodeOptionFunc(func(o *decodeOptions) { o.maxInput = n })
}

// Recursive makes ReadManifests descend into subdirectories of a directory
// argument (kubectl's -R). Default false: only the directory's own files.
func Recursive(r bool) DecodeOption {
	return decodeOptionFunc(func(o *decodeOptions) { o.recursive = r })
}

// Stdin is what ReadManifests reads for the path "-" (default os.Stdin).
func Stdin(r io.Reader) DecodeOption { return decodeOptionFunc(func(o *decodeOptions) { o.stdin = r }) }

func newDecodeOptions(opts []DecodeOption) (decodeOptions, error) {
	o := decodeOptions{maxDoc: DefaultMaxDocumentSize, maxInput: DefaultMaxInputSize, stdin: os.Stdin}
	for _, opt := range opts {
		if opt != nil {
			opt.applyDecode(&o)
		}
	}
	var errs []error
	if o.maxDoc <= 0 {
		errs = append(errs, fmt.Errorf("client: MaxDocumentSize(%d): must be positive; omit it for %d", o.maxDoc, DefaultMaxDocumentSize))
	}
	if o.maxInput <= 0 {
		errs = append(errs, fmt.Errorf("client: MaxInputSize(%d): must be positive; omit it for %d (64 MiB)", o.maxInput, DefaultMaxInputSize))
	}
	o.remaining = o.maxInput
	if o.stdin == nil {
		errs = append(errs, errors.New(`client: Stdin(nil): the reader is nil; give a reader for the path "-"`))
	}
	return o, errors.Join(errs...)
}

// manifestExtensions are the files ReadManifests picks from a directory, as
// kubectl does.
func isManifestFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// ReadManifests reads the objects in paths: files (any name), directories
// (their .yaml, .yml and .json files in name order; subdirectories only with
// [Recursive](true)) and "-" for stdin, in argument order.
//
// It reads everything it can: the result holds every good object in input
// order, and the error joins a [*ManifestError] for each bad document (or an
// error for a path that cannot be read), so a caller can report them all and
// still apply the rest, as kubectl does. Paths that hold no object at all
// are an error wrapping [ErrNoObjects].
//
// Reading honours ctx between reads (and interrupts a blocked read from a
// pipe that supports deadlines) and stops at [MaxInputSize], so an endless
// input fails instead of reading forever.
func ReadManifests(ctx context.Context, paths []string, opts ...DecodeOption) ([]Manifest, error) {
	o, err := newDecodeOptions(opts)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("client: ReadManifests: no paths given (a file, a directory or - for stdin)")
	}
	var (
		out  []Manifest
		errs []error
	)
	read := func(r io.Reader, source string) {
		ms, err := decode(ctx, r, source, &o)
		out = append(out, ms...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	readFile := func(path string) {
		f, err := os.Open(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("client: read manifests: %w", err))
			return
		}
		defer func() { _ = f.Close() }()
		read(f, path)
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return out, errors.Join(append(errs, fmt.Errorf("client: read manifests: %w", err))...)
		}
		if p == "-" {
			read(o.stdin, "-")
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("client: read manifests: %w", err))
			continue
		}
		if !st.IsDir() {
			readFile(p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && !o.recursive {
					return filepath.SkipDir
				}
				return nil
			}
			if isManifestFile(d.Name()) {
				readFile(path)
			}
			return ctx.Err()
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("client: read manifests in %s: %w", p, err))
		}
	}
	if len(out) == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("client: ReadManifests %s: %w: they hold no objects (directories are read for .yaml, .yml and .json files, subdirectories only with Recursive(true))",
			strings.Join(paths, ", "), ErrNoObjects)
	}
	return out, errors.Join(errs...)
}

// DecodeManifests decodes the YAML or JSON documents in r (separated by
// "---" lines; comments, empty documents, "kind: List" and concatenated JSON
// objects allowed, the latter numbered as items) into
// objects of any kind. source names r in errors and in [Manifest.Source].
// Like [ReadManifests] it returns every good object and joins a
// [*ManifestError] for each bad document: no apiVersion, kind or
// metadata.name, invalid YAML or JSON, too large, too many YAML aliases.
// Whether the API server serves the kind is checked when applying. Empty
// input gives no objects and no error. Like ReadManifests it honours ctx
// and stops at [MaxInputSize].
func DecodeManifests(ctx context.Context, r io.Reader, source string, opts ...DecodeOption) ([]Manifest, error) {
	o, err := newDecodeOptions(opts)
	if err != nil {
		return nil, err
	}
	return decode(ctx, r, source, &o)
}

func decode(ctx context.Context, r io.Reader, source string, o *decodeOptions) ([]Manifest, error) {
	var (
		out  []Manifest
		errs []error
	)
	if f, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		// Interrupt a read blocked on a pipe when ctx ends. Regular files
		// and stdin refuse deadlines (os.ErrNoDeadline) and need none or
		// cannot have one.
		stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
		defer func() {
			if !stop() {
				_ = f.SetReadDeadline(time.Time{})
			}
		}()
	}
	br := bufio.NewReaderSize(&boundedReader{ctx: ctx, r: r, o: o}, 64<<10)
	for index := 1; ; index++ {
		if err := ctx.Err(); err != nil {
			return out, errors.Join(append(errs, fmt.Errorf("client: decode %q: %w", source, err))...)
		}
		doc, more, err := nextDocument(br, o.maxDoc)
		where := Manifest{Source: source, Index: index}
		if err != nil && ctx.Err() != nil {
			return out, errors.Join(append(errs, fmt.Errorf("client: decode %q: %w", source, ctx.Err()))...)
		}
		if err != nil && !errors.Is(err, ErrDocumentTooLarge) {
			return out, errors.Join(append(errs, &ManifestError{Manifest: where, Err: err})...)
		}
		if err != nil {
			errs = append(errs, &ManifestError{Manifest: where, Err: err})
		} else {
			ms, err := decodeDocument(doc, where, o.maxDoc)
			out = append(out, ms...)
			errs = append(errs, err...)
		}
		if !more {
			return out, errors.Join(errs...)
		}
	}
}

// boundedReader stops at ctx's end and at the call's input budget.
type boundedReader struct {
	ctx context.Context
	r   io.Reader
	o   *decodeOptions
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	// Read one byte past the budget to tell "exactly at the cap" from "over".
	if int64(len(p)) > b.o.remaining+1 {
		p = p[:b.o.remaining+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.o.remaining {
		b.o.remaining = 0
		return 0, fmt.Errorf("%w: over %d bytes in total (raise it with MaxInputSize; or is the input endless, such as /dev/zero or a pipe that never closes?)",
			ErrInputTooLarge, b.o.maxInput)
	}
	b.o.remaining -= int64(n)
	if err != nil && b.ctx.Err() != nil {
		return n, b.ctx.Err()
	}
	return n, err
}

// nextDocument reads up to the next "---" line. It keeps at most max bytes:
// beyond that the rest of the document is skipped and the error wraps
// ErrDocumentTooLarge. more is false at the end of the input.
func nextDocument(br *bufio.Reader, max int64) (doc []byte, more bool, err error) {
	var buf bytes.Buffer
	tooLarge := false
	atLineStart := true
	var line []byte // the start of the current line, for separator detection
	for {
		chunk, isPrefix, rerr := br.ReadLine()
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, false, fmt.Errorf("read: %w", rerr)
		}
		if atLineStart {
			line = append(line[:0], chunk[:min(len(chunk), 64)]...)
			if isSeparator(line) {
				// Skip the rest of an over-long separator line.
				for isPrefix {
					if _, isPrefix, rerr = br.ReadLine(); rerr != nil {
						break
					}
				}
				return finish(&buf, tooLarge, max, true)
			}
		}
		atLineStart = !isPrefix
		if tooLarge {
			continue
		}
		if int64(buf.Len()+len(chunk)+1) > max {
			tooLarge = true
			buf = bytes.Buffer{}
			continue
		}
		buf.Write(chunk)
		if !isPrefix {
			buf.WriteByte('\n')
		}
	}
	return finish(&buf, tooLarge, max, false)
}

func finish(buf *bytes.Buffer, tooLarge bool, max int64, more bool) ([]byte, bool, error) {
	if tooLarge {
		return nil, more, fmt.Errorf("%w: over %d bytes (raise it with MaxDocumentSize)", ErrDocumentTooLarge, max)
	}
	return buf.Bytes(), more, nil
}

// isSeparator reports whether line is a YAML document separator: "---"
// followed by nothing, blanks or a comment.
func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := bytes.TrimSpace(line[3:])
	return len(rest) == 0 || rest[0] == '#'
}

// decodeDocument turns one document into objects (several for a List).
func decodeDocument(doc []byte, where Manifest, max int64) ([]Manifest, []error) {
	fail := func(err error) []error { return []error{&ManifestError{Manifest: where, Err: err}} }
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, nil
	}
	if vals := jsonStream(doc); len(vals) > 1 {
		// Concatenated JSON objects, as kubectl accepts: one item each.
		var (
			out  []Manifest
			errs []error
		)
		for i, v := range vals {
			w := where
			w.Item = i + 1
			ms, e := decodeDocument(v, w, max)
			out, errs = append(out, ms...), append(errs, e...)
		}
		return out, errs
	}
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fail(fmt.Errorf("invalid YAML or JSON: %w", err))
	}
	if int64(len(js)) > 2*max {
		return nil, fail(fmt.Errorf("%w: expands to %d bytes of JSON, over twice the %d-byte cap (YAML aliases?)", ErrDocumentTooLarge, len(js), max))
	}
	js = bytes.TrimSpace(js)
	if bytes.Equal(js, []byte("null")) {
		return nil, nil // only comments
	}
	var obj map[string]any
	if len(js) == 0 || js[0] != '{' {
		return nil, fail(fmt.Errorf("a document must be a YAML or JSON object with apiVersion, kind and metadata, not %.20q", js))
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		// UnmarshalJSON insists on kind; report the missing fields ourselves.
		if jerr := json.Unmarshal(js, &obj); jerr != nil {
			return nil, fail(fmt.Errorf("invalid object: %w", jerr))
		}
		u.Object = obj
	}
	if items, ok := u.Object["items"]; ok && strings.HasSuffix(u.GetKind(), "List") {
		list, ok := items.([]any)
		if !ok {
			return nil, fail(fmt.Errorf("%s: items must be a list of objects", u.GetKind()))
		}
		var (
			out  []Manifest
			errs []error
		)
		for i, it := range list {
			w := where
			w.Item = i + 1
			m, ok := it.(map[string]any)
			if !ok {
				errs = append(errs, &ManifestError{Manifest: w, Err: fmt.Errorf("list item is not an object")})
				continue
			}
			item := &unstructured.Unstructured{Object: m}
			if err := validateObject(item); err != nil {
				errs = append(errs, &ManifestError{Manifest: w, Err: err})
				continue
			}
			w.Object = item
			out = append(out, w)
		}
		return out, errs
	}
	if err := validateObject(u); err != nil {
		return nil, fail(err)
	}
	where.Object = u
	return []Manifest{where}, nil
}

func validateObject(u *unstructured.Unstructured) error {
	var missing []string
	if u.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if u.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if _, ok := u.Object["metadata"]; ok {
		if _, ok := u.Object["metadata"].(map[string]any); !ok {
			return fmt.Errorf("metadata must be an object")
		}
	}
	if name, _, err := unstructured.NestedString(u.Object, "metadata", "name"); err != nil || name == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		what := u.GetKind()
		if what == "" {
			what = "object"
		}
		return fmt.Errorf("%s has no %s (every object needs apiVersion, kind and metadata.name)", what, strings.Join(missing, ", "))
	}
	if _, err := schema.ParseGroupVersion(u.GetAPIVersion()); err != nil {
		return fmt.Errorf("invalid apiVersion %q: %w", u.GetAPIVersion(), err)
	}
	return nil
}

// jsonStream splits a document made of concatenated JSON values; it returns
// nil when doc is not valid JSON (YAML, or one value with garbage after it).
func jsonStream(doc []byte) [][]byte {
	t := bytes.TrimSpace(doc)
	if len(t) == 0 || t[0] != '{' {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	var vals [][]byte
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return vals
		}
		if err != nil {
			return nil
		}
		vals = append(vals, raw)
	}
}
