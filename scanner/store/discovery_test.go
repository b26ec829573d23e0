package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestCTCacheKeepsTheLastSearchPerDomain: an entry reads back as put
// (names sorted, times to the nanosecond, no full search as zero time),
// a second put replaces names and counters, and domains are apart.
func TestCTCacheKeepsTheLastSearchPerDomain(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if _, ok, err := s.CTEntry(ctx, "example.nhs.uk"); ok || err != nil {
		t.Fatalf("empty cache: ok %v, err %v", ok, err)
	}
	at := time.Date(2026, 3, 1, 2, 3, 4, 5, time.UTC)
	tests := []CTEntry{
		{Names: []string{"www.example.nhs.uk", "a.example.nhs.uk"}, MaxID: 42, FetchedAt: at},
		{Names: []string{"b.example.nhs.uk"}, MaxID: 99, FullAt: at, FetchedAt: at.Add(time.Hour)},
	}
	for _, want := range tests {
		if err := s.PutCTEntry(ctx, "example.nhs.uk", want); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.CTEntry(ctx, "example.nhs.uk")
		slices.Sort(want.Names)
		if !ok || err != nil || got.MaxID != want.MaxID || !got.FullAt.Equal(want.FullAt) ||
			!got.FetchedAt.Equal(want.FetchedAt) || !slices.Equal(got.Names, want.Names) {
			t.Errorf("got %+v (%v, %v), want %+v", got, ok, err, want)
		}
	}
	if _, ok, _ := s.CTEntry(ctx, "other.nhs.uk"); ok {
		t.Error("another domain reads an entry it was never given")
	}
}

// TestUnownedNamesAreKeptWithTheirRun: put twice is one row each, read
// back sorted, per run.
func TestUnownedNamesAreKeptWithTheirRun(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	r, _, err := s.BeginRun(ctx, "A", "")
	if err != nil {
		t.Fatal(err)
	}
	us := []Unowned{{"www.z.nhs.uk", "ct", "z.nhs.uk"}, {"a.nhs.uk", "cname", "www.b.nhs.uk"}}
	for range 2 {
		if err := s.PutUnowned(ctx, r.ID, us); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Unowned(ctx, r.ID)
	if err != nil || len(got) != 2 || got[0] != us[1] || got[1] != us[0] {
		t.Errorf("unowned %v (%v), want %v sorted", got, err, us)
	}
	if got, _ := s.Unowned(ctx, r.ID+1); len(got) != 0 {
		t.Errorf("another run has %v", got)
	}
}
