package iam

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/secretbox"
	"bridgeport/internal/store"
)

// AccessKey is a user's access key. Its secret is sealed with the
// server's secret box: CreateAccessKey shows it once, and nothing shows
// it again.
type AccessKey struct {
	ID           string    `json:"id"`
	User         string    `json:"user"`
	SealedSecret string    `json:"secret"`
	Status       string    `json:"status"` // Active or Inactive
	Created      time.Time `json:"created"`
}

// KeyUse is a key's last use, a record of its own (so that recording a
// use never races a change of the key).
type KeyUse struct {
	At      time.Time `json:"at"`
	Service string    `json:"service"`
	Region  string    `json:"region"`
}

func keyKey(id string) string    { return "iam.key." + id }
func keyUseKey(id string) string { return "iam.keyuse." + id }

// Key statuses.
const (
	KeyActive   = "Active"
	KeyInactive = "Inactive"
)

// lastUseEvery bounds how often a key's last use is written to the store:
// at most once a minute a node, not at every request.
const lastUseEvery = time.Minute

func noKey(id string) *awsapi.Error {
	return errNoSuchEntity("The Access Key with id %s cannot be found.", id)
}

// keysOf returns a user's keys, oldest first.
func (s *Service) keysOf(user string) []AccessKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []AccessKey
	for _, st := range s.keys {
		if strings.EqualFold(st.key.User, user) {
			out = append(out, st.key)
		}
	}
	slices.SortFunc(out, func(a, b AccessKey) int { return a.Created.Compare(b.Created) })
	return out
}

func randomFrom(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (s *Service) createAccessKey(ctx context.Context, p awsapi.Params) (any, error) {
	u, _, err := s.callerUser(ctx, p)
	if err != nil {
		return nil, err
	}
	if len(s.keysOf(u.Name)) >= 2 {
		return nil, errLimit("Cannot exceed quota for AccessKeysPerUser: 2")
	}
	secret := randomFrom(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
	k := AccessKey{ID: "AKIA" + randomFrom(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), User: u.Name, SealedSecret: s.box.Seal(secret),
		Status: KeyActive, Created: time.Now().UTC()}
	if err := s.save(ctx, keyKey(k.ID), 0, &k); err != nil {
		return nil, err
	}
	return struct {
		AccessKey struct {
			UserName        string `xml:"UserName"`
			AccessKeyId     string `xml:"AccessKeyId"`
			Status          string `xml:"Status"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			CreateDate      string `xml:"CreateDate"`
		} `xml:"AccessKey"`
	}{AccessKey: struct {
		UserName        string `xml:"UserName"`
		AccessKeyId     string `xml:"AccessKeyId"`
		Status          string `xml:"Status"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		CreateDate      string `xml:"CreateDate"`
	}{u.Name, k.ID, k.Status, secret, isoTime(k.Created)}}, nil
}

func (s *Service) listAccessKeys(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	u, _, err := s.callerUser(ctx, p)
	if err != nil {
		return nil, err
	}
	type meta struct {
		UserName    string `xml:"UserName"`
		AccessKeyId string `xml:"AccessKeyId"`
		Status      string `xml:"Status"`
		CreateDate  string `xml:"CreateDate"`
	}
	byID := map[string]AccessKey{}
	for _, k := range s.keysOf(u.Name) {
		byID[k.ID] = k
	}
	list, info := pageOf(byID, p.Str("Marker"), max, func(_ string, k *AccessKey) meta { return meta{u.Name, k.ID, k.Status, isoTime(k.Created)} })
	return struct {
		AccessKeyMetadata members[meta] `xml:"AccessKeyMetadata"`
		listInfo
	}{list, info}, nil
}

// keyParam returns the access key a request names, of the request's user
// (or the caller's).
func (s *Service) keyParam(ctx context.Context, p awsapi.Params) (AccessKey, uint64, error) {
	var c checker
	id := p.Str("AccessKeyId")
	c.str(id, "accessKeyId", true, 16, 128, nil, "")
	if err := c.err(); err != nil {
		return AccessKey{}, 0, err
	}
	u, _, err := s.callerUser(ctx, p)
	if err != nil {
		return AccessKey{}, 0, err
	}
	s.mu.RLock()
	st := s.keys[*id]
	s.mu.RUnlock()
	if st == nil || !strings.EqualFold(st.key.User, u.Name) {
		return AccessKey{}, 0, noKey(*id)
	}
	return st.key, st.rev, nil
}

func (s *Service) updateAccessKey(ctx context.Context, p awsapi.Params) (any, error) {
	status := p.Str("Status")
	if status == nil || (*status != KeyActive && *status != KeyInactive) {
		var c checker
		if status == nil {
			c.v.Add(nil, "status", awsapi.MustNotBeNull)
		} else {
			c.v.Add(*status, "status", awsapi.InEnum(KeyActive, KeyInactive))
		}
		return nil, c.err()
	}
	k, rev, err := s.keyParam(ctx, p)
	if err != nil {
		return nil, err
	}
	k.Status = *status
	return nil, s.save(ctx, keyKey(k.ID), rev, &k)
}

func (s *Service) deleteAccessKey(ctx context.Context, p awsapi.Params) (any, error) {
	k, rev, err := s.keyParam(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := s.remove(ctx, keyKey(k.ID), rev); err != nil {
		return nil, err
	}
	if e, err := s.st.Get(ctx, keyUseKey(k.ID)); err == nil {
		_, _ = s.st.Delete(ctx, keyUseKey(k.ID), e.Revision)
	}
	return nil, nil
}

func (s *Service) getAccessKeyLastUsed(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	id := p.Str("AccessKeyId")
	c.str(id, "accessKeyId", true, 16, 128, nil, "")
	if err := c.err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	st := s.keys[*id]
	var use, stored KeyUse
	if st != nil {
		stored = st.stored
		if u := st.use.Load(); u != nil {
			use = *u
		}
	}
	s.mu.RUnlock()
	if st == nil {
		return nil, noKey(*id)
	}
	last := struct {
		LastUsedDate string `xml:"LastUsedDate,omitempty"`
		ServiceName  string `xml:"ServiceName"`
		Region       string `xml:"Region"`
	}{ServiceName: "N/A", Region: "N/A"}
	if stored.At.After(use.At) {
		use = stored
	}
	if !use.At.IsZero() {
		last.LastUsedDate, last.ServiceName, last.Region = isoTime(use.At), use.Service, use.Region
	}
	return struct {
		UserName          string `xml:"UserName"`
		AccessKeyLastUsed any    `xml:"AccessKeyLastUsed"`
	}{st.key.User, last}, nil
}

// LookupKey returns the secret and principal of an active access key, or
// of a session's temporary key. It reads memory, so it is cheap enough for
// every request; a key this node does not know yet is looked for in the
// store, and if it is there (made a moment ago through another node), the
// node catches up to it first, so that a key works on every node at once.
func (s *Service) LookupKey(id string) (awsapi.Key, bool) {
	if k, ok := s.lookupKey(id); ok {
		return k, true
	}
	key := keyKey(id)
	if strings.HasPrefix(id, "ASIA") {
		key = sessionKey(id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e, err := s.st.Get(ctx, key)
	if err != nil || s.applied.WaitFor(ctx, e.Revision) != nil {
		return awsapi.Key{}, false
	}
	return s.lookupKey(id)
}

func (s *Service) lookupKey(id string) (awsapi.Key, bool) {
	if strings.HasPrefix(id, "ASIA") {
		return s.lookupSession(id)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.keys[id]
	if st == nil || st.key.Status != KeyActive || st.secret == "" {
		return awsapi.Key{}, false
	}
	us := s.users[userKey(st.key.User)]
	if us == nil {
		return awsapi.Key{}, false
	}
	return awsapi.Key{Secret: st.secret, Principal: s.userArn(&us.user)}, true
}

// KeyUsed records that an access key signed a request for service in
// region; the store learns of it at most once a minute a node. It takes
// no lock but the read lock, so that requests do not queue on it.
func (s *Service) KeyUsed(ctx context.Context, id, service, region string) {
	s.mu.RLock()
	st := s.keys[id]
	var storedAt time.Time
	var rev uint64
	if st != nil {
		storedAt, rev = st.stored.At, st.useRev
	}
	s.mu.RUnlock()
	if st == nil {
		return
	}
	now := time.Now().UTC()
	if last := st.use.Load(); last == nil || last.Service != service || now.Sub(last.At) >= time.Second {
		st.use.Store(&KeyUse{At: now, Service: service, Region: region})
	}
	written := st.written.Load()
	if now.Sub(storedAt) < lastUseEvery || now.UnixNano()-written < int64(lastUseEvery) || !st.written.CompareAndSwap(written, now.UnixNano()) {
		return
	}
	data, _ := json.Marshal(KeyUse{At: now, Service: service, Region: region})
	go func() {
		ctx := context.WithoutCancel(ctx)
		// A lost race (another node wrote it) is fine: the next use
		// writes it again.
		if rev == 0 {
			_, _ = s.st.Create(ctx, keyUseKey(id), data)
		} else {
			_, _ = s.st.Update(ctx, keyUseKey(id), data, rev)
		}
	}()
}

// Reseal seals every access key's and session's secret that opens with
// from (the previous key) again with to, as connection.Reseal does for
// connections, and returns how many records it changed and how many open
// with neither.
func Reseal(ctx context.Context, st *store.Store, from, to *secretbox.Box) (changed, unreadable int, err error) {
	for _, prefix := range []string{"iam.key.", "iam.session."} {
		n, err := st.Rewrite(ctx, prefix, func(key string, value []byte) ([]byte, error) {
			var rec map[string]json.RawMessage
			var sealed string
			if err := json.Unmarshal(value, &rec); err != nil || json.Unmarshal(rec["secret"], &sealed) != nil {
				return nil, fmt.Errorf("record %s is unreadable", key)
			}
			n, lost := secretbox.Reseal([]*string{&sealed}, from, to)
			if lost {
				unreadable++
			}
			if n == 0 {
				return nil, nil
			}
			rec["secret"], _ = json.Marshal(sealed)
			return json.Marshal(rec)
		})
		changed += n
		if err != nil {
			return changed, unreadable, err
		}
	}
	return changed, unreadable, nil
}
