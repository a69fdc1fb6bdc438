package schedule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // tz names must resolve the same in a scratch image as on a laptop

	"github.com/hibiken/asynq"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/refreshq/refreshq/internal/smallfile"
	"github.com/refreshq/refreshq/tasks"
)

// MinEvery is the shortest interval an every: entry may have. Cron cannot
// fire more often than once a minute either, so both forms share one floor;
// below it each period costs every worker a Redis call and keeps one more
// task in Redis, and a refresh of the same account more than once a minute
// only spends the upstream's budget (bundle.social allows 100 requests a
// minute per key). An "every: 1s" is far more likely a typo for "1h".
const MinEvery = time.Minute

// MaxFileBytes bounds a schedule file: the runner re-reads it every few
// seconds, and a file this large is not a schedule written by hand.
const MaxFileBytes = 4 << 20

// Schedule is a validated schedule file.
type Schedule struct {
	Entries []Entry
}

// Entry is one periodic refresh. Exactly one of Every and Cron is set.
type Entry struct {
	// Name keys the entry's task ids: given in the file, or derived from
	// provider, subject and spec so that every worker derives the same one.
	Name string
	// Refresh is what each period enqueues. Its Queue is tasks.DefaultQueue
	// when the file names none; its Meta is the file's meta (nil when none),
	// to which the runner adds "schedule" and "period".
	tasks.Refresh

	// Every is aligned to the Unix epoch: every 24h starts at 00:00 UTC.
	Every time.Duration
	// Cron is a 5-field spec or a descriptor such as @daily, read in TZ.
	Cron string
	// TZ is the IANA zone Cron is read in; "UTC" when the file gives none.
	TZ string

	// Line is where the entry starts in the file, for messages.
	Line int

	loc  *time.Location
	spec *cron.SpecSchedule // on wall-clock time, see period.go
}

// Spec is the entry's schedule as one string: "every 1h0m0s" or
// "cron 0 3 * * 1 Europe/Berlin".
func (e Entry) Spec() string {
	if e.Every > 0 {
		return "every " + e.Every.String()
	}
	return "cron " + e.Cron + " " + e.TZ
}

// TaskID is the id of the entry's task for the period starting at start.
// Every worker computes the same id, so only the first enqueue succeeds.
func (e Entry) TaskID(start time.Time) string {
	return "sched:" + e.Name + ":" + start.UTC().Format(time.RFC3339)
}

// Task builds the entry's task for one period, enqueued at now. Retention
// keeps the id taken for a whole period after the task completes (plus a
// minute for clocks that disagree), so a worker that restarts within the
// period does not enqueue it again.
func (e Entry) Task(now, start, end time.Time) (*asynq.Task, error) {
	meta := map[string]any{}
	if len(e.Meta) > 0 {
		if err := json.Unmarshal(e.Meta, &meta); err != nil {
			return nil, fmt.Errorf("schedule %s: meta: %w", e.Name, err)
		}
	}
	meta["schedule"] = e.Name
	meta["period"] = start.UTC().Format(time.RFC3339)
	mb, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("schedule %s: meta: %w", e.Name, err)
	}
	r := e.Refresh
	r.Meta, r.EnqueuedAt = mb, now.UTC()
	return tasks.NewTask(r, asynq.TaskID(e.TaskID(start)), asynq.Retention(end.Sub(start)+retentionSlack))
}

// retentionSlack covers workers whose clocks disagree by up to a minute.
const retentionSlack = time.Minute

// Problem is one thing wrong with a schedule file.
type Problem struct {
	Entry int    // 1-based; 0 for the file as a whole
	Line  int    // 0 when unknown
	Label string // "hooked acc-1", "bundle_social t1/TIKTOK" or the name
	Field string // the key at fault, "" for the entry or file as a whole
	Msg   string // what is wrong and what is allowed
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Entry > 0 {
		fmt.Fprintf(&b, "entry %d", p.Entry)
		var paren []string
		if p.Line > 0 {
			paren = append(paren, fmt.Sprintf("line %d", p.Line))
		}
		if p.Label != "" {
			paren = append(paren, p.Label)
		}
		if len(paren) > 0 {
			b.WriteString(" (" + strings.Join(paren, ", ") + ")")
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + " ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found in a schedule file, so an operator fixes
// them in one go.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid schedule: " + e.Problems[0].String()
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.String()
	}
	return fmt.Sprintf("invalid schedule, %d problems:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// Load reads and parses the schedule file at path.
func Load(path string) (Schedule, error) {
	data, err := readFile(path)
	if err != nil {
		return Schedule{}, err
	}
	s, err := Parse(data)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule file %s: %w", path, err)
	}
	return s, nil
}

func readFile(path string) ([]byte, error) {
	data, err := smallfile.Read(path, MaxFileBytes)
	var big *smallfile.TooLargeError
	switch {
	case errors.As(err, &big):
		return nil, fmt.Errorf("schedule file %s: larger than %d bytes", path, MaxFileBytes)
	case err != nil:
		return nil, fmt.Errorf("schedule file: %w (set SCHEDULE_FILE to a readable file, or unset it for no schedule)", err)
	}
	return data, nil
}

// scheduleKeys are an entry's keys of its own; the refresh's keys are
// tasks.InputFields, all but deadline, which a repeating entry cannot
// carry as one time.
var scheduleKeys = []string{"name", "every", "cron", "tz"}

// entryKeys are the keys an entry may have, in the order messages list them.
var entryKeys = func() []string {
	keys := []string{"name"}
	for _, k := range tasks.InputFields() {
		if k != "deadline" {
			keys = append(keys, k)
		}
	}
	return append(keys, scheduleKeys[1:]...)
}()

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	unsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
)

// Parse validates a schedule: a list of entries, or a mapping whose only
// key is "entries". JSON is YAML, so both are read the same way. Unknown
// keys are errors, because a misspelt key would otherwise disable a refresh
// without a word. An empty file is an error too (an editor that truncates
// before writing must not empty the schedule); write [] for no entries.
func Parse(data []byte) (Schedule, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Schedule{}, &Error{Problems: []Problem{{Msg: "is not valid YAML or JSON: " + err.Error()}}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return Schedule{}, &Error{Problems: []Problem{{Msg: "the file is empty; write a list of entries, or [] for none"}}}
	}
	top := deref(doc.Content[0])
	list, p := entryList(top)
	if p != nil {
		return Schedule{}, &Error{Problems: []Problem{*p}}
	}
	var (
		s        Schedule
		problems []Problem
		byName   = map[string]int{}
	)
	for i, n := range list.Content {
		e, ps := parseEntry(i+1, deref(n))
		if len(ps) == 0 {
			if prev, ok := byName[e.Name]; ok {
				p := Problem{Entry: i + 1, Line: e.Line, Label: label(e)}
				if e.derived {
					p.Msg = fmt.Sprintf("has the same provider, subject and schedule as entry %d; remove one", prev)
				} else {
					p.Field, p.Msg = "name", fmt.Sprintf("%q is also the name of entry %d; names key the task ids, so they must be unique", e.Name, prev)
				}
				ps = append(ps, p)
			} else {
				byName[e.Name] = i + 1
			}
		}
		problems = append(problems, ps...)
		s.Entries = append(s.Entries, e.Entry)
	}
	if len(problems) > 0 {
		return Schedule{}, &Error{Problems: problems}
	}
	return s, nil
}

func entryList(top *yaml.Node) (*yaml.Node, *Problem) {
	const want = "the top level must be a list of entries, or a mapping with the single key entries"
	switch top.Kind {
	case yaml.SequenceNode:
		return top, nil
	case yaml.MappingNode:
		var list *yaml.Node
		for i := 0; i+1 < len(top.Content); i += 2 {
			k, v := top.Content[i], deref(top.Content[i+1])
			if k.Value != "entries" {
				return nil, &Problem{Line: k.Line, Msg: fmt.Sprintf("unknown top-level key %q; %s", k.Value, want)}
			}
			if v.Kind != yaml.SequenceNode {
				return nil, &Problem{Line: v.Line, Msg: "entries must be a list"}
			}
			list = v
		}
		if list == nil {
			return nil, &Problem{Line: top.Line, Msg: want}
		}
		return list, nil
	case yaml.ScalarNode:
		if top.Tag == "!!null" {
			return nil, &Problem{Msg: "the file is empty; write a list of entries, or [] for none"}
		}
	}
	return nil, &Problem{Line: top.Line, Msg: want}
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

type parsed struct {
	Entry
	derived bool // Name was derived, not given
}

func label(e parsed) string {
	switch subj := e.Subject(); {
	case strings.Trim(subj, "/") != "":
		return e.Provider + " " + subj
	case !e.derived && e.Name != "":
		return e.Name
	}
	return e.Provider
}

// pairs returns an entry's key/value pairs with YAML merge keys (<<: *x)
// expanded, so shared settings can live in an anchor; the entry's own keys
// win over merged ones. cyclic reports a mapping that merges itself, at any
// depth (&a {<<: *a}): that merge is left out rather than followed forever.
func pairs(n *yaml.Node) (keys, vals []*yaml.Node, cyclic bool) {
	return pairsOn(n, map[*yaml.Node]bool{})
}

// pairsOn is pairs with the mappings being expanded on the way to n.
func pairsOn(n *yaml.Node, onPath map[*yaml.Node]bool) (keys, vals []*yaml.Node, cyclic bool) {
	onPath[n] = true
	defer delete(onPath, n)
	seen := map[string]bool{}
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			srcs := []*yaml.Node{deref(v)}
			if srcs[0].Kind == yaml.SequenceNode {
				srcs = srcs[0].Content
			}
			for _, src := range srcs {
				src = deref(src)
				if src.Kind != yaml.MappingNode {
					continue
				}
				if onPath[src] {
					cyclic = true
					continue
				}
				mk, mv, cyc := pairsOn(src, onPath)
				cyclic = cyclic || cyc
				for j := range mk {
					merged = append(merged, [2]*yaml.Node{mk[j], mv[j]})
				}
			}
			continue
		}
		own = append(own, [2]*yaml.Node{k, v})
	}
	for _, kv := range own {
		seen[kv[0].Value] = true
		keys, vals = append(keys, kv[0]), append(vals, kv[1])
	}
	for _, kv := range merged {
		if !seen[kv[0].Value] {
			seen[kv[0].Value] = true
			keys, vals = append(keys, kv[0]), append(vals, kv[1])
		}
	}
	return keys, vals, cyclic
}

func parseEntry(idx int, n *yaml.Node) (parsed, []Problem) {
	p := &entryParser{idx: idx, e: parsed{Entry: Entry{Line: n.Line}}}
	if n.Kind != yaml.MappingNode {
		p.bad("", "must be a mapping with keys %s", strings.Join(entryKeys, ", "))
		return p.e, p.ps
	}
	f := p.readKeys(n)
	p.e.Name, p.e.Cron, p.e.TZ = f.str["name"], f.str["cron"], f.str["tz"]
	p.readRefresh(f)
	p.readWhen(f)
	if p.e.Name != "" && !nameRE.MatchString(p.e.Name) {
		p.bad("name", "%q: use letters, digits and _ . - (at most 128, starting with a letter or digit); it becomes part of task ids", p.e.Name)
	}
	if len(p.ps) == 0 {
		if p.e.Name == "" {
			p.e.Name, p.e.derived = deriveName(p.e.Entry), true
		}
		p.checkTask()
	}
	for i := range p.ps {
		p.ps[i].Label = label(p.e)
	}
	return p.e, p.ps
}

// entryParser reads one schedule entry, collecting its problems.
type entryParser struct {
	idx int
	e   parsed
	ps  []Problem
}

func (p *entryParser) bad(field, format string, args ...any) {
	p.ps = append(p.ps, Problem{Entry: p.idx, Line: p.e.Line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// entryFields are an entry's keys as read from its mapping.
type entryFields struct {
	str      map[string]string          // non-empty scalars, trimmed
	given    map[string]bool            // every key present, valid or not
	refresh  map[string]json.RawMessage // the refresh's keys, as JSON
	reported map[string]bool            // keys whose problem is said already
}

// readKeys reads the mapping's keys, saying which are unknown, repeated
// or not a non-empty string.
func (p *entryParser) readKeys(n *yaml.Node) entryFields {
	f := entryFields{str: map[string]string{}, given: map[string]bool{}, refresh: map[string]json.RawMessage{}, reported: map[string]bool{}}
	keys, vals, cyclic := pairs(n)
	if cyclic {
		p.bad("<<", "merges a mapping into itself; merge another anchor, e.g. <<: *defaults")
	}
	for i, k := range keys {
		key, v := k.Value, deref(vals[i])
		if f.given[key] {
			p.bad(key, "is given twice")
			continue
		}
		f.given[key] = true
		switch {
		case !slices.Contains(entryKeys, key):
			p.bad("", "has unknown key %q; allowed keys: %s", key, strings.Join(entryKeys, ", "))
		case key == "meta":
			if m := parseMeta(v, func(msg string) { p.bad("meta", "%s", msg) }); m != nil {
				f.refresh[key] = m
			}
			f.reported[key] = f.refresh[key] == nil
		case v.Kind != yaml.ScalarNode || v.Tag == "!!null" || strings.TrimSpace(v.Value) == "":
			p.bad(key, "must be a non-empty string; remove the key to leave it unset")
			f.reported[key] = true
		default:
			f.str[key] = strings.TrimSpace(v.Value)
			if !slices.Contains(scheduleKeys, key) {
				// A YAML scalar is a string here, so account_id: 12345 is
				// the id "12345".
				f.refresh[key], _ = json.Marshal(f.str[key])
			}
		}
	}
	return f
}

// readRefresh reads the refresh through the tasks package, as every
// producer's is, and checks it as the worker will check it.
func (p *entryParser) readRefresh(f entryFields) {
	obj, _ := json.Marshal(f.refresh)
	r, err := tasks.Decode(obj, nil)
	if err != nil {
		p.bad("", "%v", err)
	}
	p.e.Refresh = r
	if p.e.Queue == "" {
		p.e.Queue = tasks.DefaultQueue
	}
	for _, prob := range r.Problems() {
		var ve *tasks.ValidationError
		switch {
		case !errors.As(prob, &ve):
			p.bad("", "%v", prob)
		case f.reported[ve.Field]:
		default:
			p.bad(ve.Field, "%s", ve.Problem)
		}
	}
}

// readWhen reads when the entry runs: exactly one of every and cron.
func (p *entryParser) readWhen(f entryFields) {
	e := &p.e
	switch {
	case f.given["every"] && f.given["cron"]:
		p.bad("", "gives both every and cron; give exactly one")
	case !f.given["every"] && !f.given["cron"]:
		p.bad("", "needs exactly one of every (a Go duration such as 30m, 6h or 168h) or cron (5 fields or @daily, @weekly, ...)")
	case f.given["every"]:
		if v, ok := f.str["every"]; ok {
			if msg := parseEvery(v, &e.Every); msg != "" {
				p.bad("every", "%q: %s", v, msg)
			}
		}
		if f.given["tz"] {
			p.bad("tz", "applies to cron entries only; every periods are aligned to the Unix epoch in UTC (use cron, e.g. \"0 3 * * *\", for a local time of day)")
		}
	case f.given["cron"]:
		e.loc = time.UTC
		if e.TZ == "" {
			e.TZ = "UTC"
		} else if msg := parseTZ(e.TZ, &e.loc); msg != "" {
			p.bad("tz", "%q: %s", e.TZ, msg)
		}
		if v, ok := f.str["cron"]; ok {
			spec, norm, msg := parseCron(v)
			if msg != "" {
				p.bad("cron", "%q: %s", v, msg)
			} else {
				e.spec, e.Cron = spec, norm
			}
		}
	}
}

// checkTask builds the task as the runner will build it, so that a meta
// that grows past its limit with schedule and period fails here instead.
func (p *entryParser) checkTask() {
	now := time.Now()
	if _, err := p.e.Task(now, now, now.Add(time.Hour)); err != nil {
		var ve *tasks.ValidationError
		if errors.As(err, &ve) {
			p.bad(ve.Field, "%s", ve.Problem)
		} else {
			p.bad("", "%v", err)
		}
	}
}

func parseEvery(v string, out *time.Duration) string {
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return "not a duration; use a Go duration such as 30m, 6h or 168h (there is no day unit)"
	case d < MinEvery:
		return fmt.Sprintf("is shorter than the %v floor; schedule refreshes at most once a minute", MinEvery)
	case d%time.Second != 0:
		return "must be whole seconds"
	}
	*out = d
	return ""
}

func parseTZ(v string, out **time.Location) string {
	if v == "Local" {
		return "Local depends on the machine; use an IANA name such as Europe/Berlin or UTC"
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return "unknown time zone; use an IANA name such as Europe/Berlin, America/New_York or UTC"
	}
	*out = loc
	return ""
}

// reservedMeta are the meta keys the runner sets on every task.
var reservedMeta = []string{"schedule", "period"}

func parseMeta(n *yaml.Node, bad func(string)) json.RawMessage {
	if n.Kind != yaml.MappingNode {
		bad("must be an object, e.g. {team: growth}")
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		bad("must be an object with string keys: " + err.Error())
		return nil
	}
	for _, k := range reservedMeta {
		if _, ok := m[k]; ok {
			bad(fmt.Sprintf("must not set %q: the scheduler sets schedule and period", k))
			return nil
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		bad("cannot be written as JSON: " + err.Error())
		return nil
	}
	return b
}

// deriveName makes a readable name that every worker derives alike. The
// hash keeps two entries for one subject on different schedules apart; a
// change of spec gives a new name, so a reload never mistakes the new
// schedule's periods for the old one's.
func deriveName(e Entry) string {
	sum := sha256.Sum256([]byte(e.Provider + "\x00" + e.Subject() + "\x00" + e.Spec()))
	subj := strings.Trim(unsafe.ReplaceAllString(e.Subject(), "_"), "_.-")
	if len(subj) > 48 {
		subj = subj[:48]
	}
	if subj == "" {
		return e.Provider + "-" + hex.EncodeToString(sum[:4])
	}
	return e.Provider + "-" + subj + "-" + hex.EncodeToString(sum[:4])
}
