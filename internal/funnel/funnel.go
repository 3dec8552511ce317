// Package funnel counts each tenant's sign-in steps by the hour (codes
// asked, sent, delivered, sign-ins), so the console can show the last 24
// hours and 7 days across restarts and nodes.
//
// Each process counts in memory and writes its counts every half minute,
// and when it closes, to files of its own: one per tenant and day, named
// after the process. No two processes write the same key, so no lock is
// needed, and a reader sums the files. Counts older than Keep are dropped.
package funnel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Storage is where the counts live: Caddy's storage or the directory's.
type Storage interface {
	Store(ctx context.Context, key string, value []byte) error
	Load(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, path string, recursive bool) ([]string, error)
}

// Counts are steps and how often they happened.
type Counts map[string]int

const (
	prefix = "email_otp/funnel"
	// Keep is how long counts are kept.
	Keep = 8 * 24 * time.Hour
	// FlushEvery is how often a process writes its counts.
	FlushEvery = 30 * time.Second
	dayLayout  = "2006-01-02"
)

// Funnel is one process's counts and its files.
type Funnel struct {
	kv   Storage
	node string // this process's file name
	now  func() time.Time

	mu    sync.Mutex
	hours map[string]map[int64]Counts // tenant key → hour (Unix seconds / 3600) → counts
	dirty map[string]map[string]bool  // tenant key → days to write

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New is a funnel writing to kv; now is the clock (nil: time.Now).
func New(kv Storage, now func() time.Time) *Funnel {
	if now == nil {
		now = time.Now
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Funnel{kv: kv, node: hex.EncodeToString(b), now: now,
		hours: map[string]map[int64]Counts{}, dirty: map[string]map[string]bool{}}
}

// Start writes the counts every FlushEvery until Close.
func (f *Funnel) Start() {
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(f.done)
		t := time.NewTicker(FlushEvery)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), FlushEvery)
				_ = f.Flush(ctx) // the next flush tries again
				cancel()
			}
		}
	}()
}

// closeWait bounds the last write: Caddy closes the funnel while it
// loads a new config, which must not wait on a storage that is gone.
const closeWait = 2 * time.Second

// Close writes what is counted, within closeWait, and stops.
func (f *Funnel) Close() error {
	f.once.Do(func() {
		if f.stop != nil {
			close(f.stop)
			<-f.done
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	return f.Flush(ctx)
}

// Add counts one step of tenant now.
func (f *Funnel) Add(tenant, step string) {
	now := f.now()
	hour := now.Unix() / 3600
	f.mu.Lock()
	defer f.mu.Unlock()
	byHour := f.hours[tenant]
	if byHour == nil {
		byHour = map[int64]Counts{}
		f.hours[tenant] = byHour
	}
	if byHour[hour] == nil {
		byHour[hour] = Counts{}
	}
	byHour[hour][step]++
	if f.dirty[tenant] == nil {
		f.dirty[tenant] = map[string]bool{}
	}
	f.dirty[tenant][now.UTC().Format(dayLayout)] = true
}

// dayFile is what a process writes for a tenant and a day.
type dayFile struct {
	Hours map[string]Counts `json:"hours"` // Unix hour → counts
}

func tenantDir(tenant string) string { return prefix + "/" + url.PathEscape(tenant) }

// Flush writes this process's changed days and drops what is older than
// Keep, in memory and in the storage.
func (f *Funnel) Flush(ctx context.Context) error {
	cutoff := (f.now().Add(-Keep).Unix()) / 3600
	f.mu.Lock()
	writes := map[string][]byte{}
	for tenant, days := range f.dirty {
		for day := range days {
			file := dayFile{Hours: map[string]Counts{}}
			for hour, c := range f.hours[tenant] {
				if time.Unix(hour*3600, 0).UTC().Format(dayLayout) == day {
					file.Hours[strconv.FormatInt(hour, 10)] = c
				}
			}
			data, _ := json.Marshal(file)
			writes[tenantDir(tenant)+"/"+day+"/"+f.node+".json"] = data
		}
	}
	f.dirty = map[string]map[string]bool{}
	tenants := make([]string, 0, len(f.hours))
	for tenant, byHour := range f.hours {
		tenants = append(tenants, tenant)
		for hour := range byHour {
			if hour < cutoff {
				delete(byHour, hour)
			}
		}
	}
	f.mu.Unlock()
	var errs []error
	for key, data := range writes {
		errs = append(errs, f.kv.Store(ctx, key, data))
	}
	for _, tenant := range tenants {
		errs = append(errs, f.dropOld(ctx, tenant))
	}
	return errors.Join(errs...)
}

// dropOld deletes the tenant's days older than Keep, of every process.
func (f *Funnel) dropOld(ctx context.Context, tenant string) error {
	files, err := f.files(ctx, tenant)
	oldest := f.now().Add(-Keep).UTC().Format(dayLayout)
	for _, file := range files {
		if file.day < oldest {
			_ = f.kv.Delete(ctx, file.key)
			_ = f.kv.Delete(ctx, path.Dir(file.key)) // an empty day's folder, where there are folders
		}
	}
	return err
}

// countsFile is one process's file of one day.
type countsFile struct{ key, day, node string }

// files are the tenant's count files of every process, listed by key
// (Redis has no folders to list).
func (f *Funnel) files(ctx context.Context, tenant string) ([]countsFile, error) {
	keys, err := f.kv.List(ctx, tenantDir(tenant), true)
	if err != nil {
		return nil, ignoreMissing(err)
	}
	var out []countsFile
	for _, key := range keys {
		node, ok := strings.CutSuffix(path.Base(key), ".json")
		if !ok {
			continue // a folder
		}
		out = append(out, countsFile{key: key, day: path.Base(path.Dir(key)), node: node})
	}
	return out, nil
}

// Since sums the tenant's counts of every process from the hour of from
// on; this process's own counts are as of now.
func (f *Funnel) Since(ctx context.Context, tenant string, from time.Time) (Counts, error) {
	sums, err := f.Windows(ctx, tenant, from)
	return sums[0], err
}

// Windows is Since for each of froms, from one read of the storage.
func (f *Funnel) Windows(ctx context.Context, tenant string, froms ...time.Time) ([]Counts, error) {
	sums := make([]Counts, len(froms))
	firstDay := ""
	for i, from := range froms {
		sums[i] = Counts{}
		if day := from.UTC().Format(dayLayout); i == 0 || day < firstDay {
			firstDay = day
		}
	}
	add := func(hour int64, c Counts) {
		for i, from := range froms {
			if hour >= from.Unix()/3600 {
				for step, n := range c {
					sums[i][step] += n
				}
			}
		}
	}
	f.mu.Lock()
	for hour, c := range f.hours[tenant] {
		add(hour, c)
	}
	f.mu.Unlock()
	files, err := f.files(ctx, tenant)
	if err != nil {
		return sums, err
	}
	for _, file := range files {
		if file.day < firstDay || file.node == f.node {
			continue // too old, or counted from memory
		}
		data, err := f.kv.Load(ctx, file.key)
		if err != nil {
			continue // removed meanwhile
		}
		var counts dayFile
		if json.Unmarshal(data, &counts) != nil {
			continue // a damaged file loses its day's counts, nothing else
		}
		for h, c := range counts.Hours {
			if hour, err := strconv.ParseInt(h, 10, 64); err == nil {
				add(hour, c)
			}
		}
	}
	return sums, nil
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
