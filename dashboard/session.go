package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/swarmhook/swarmhook/config"
)

// CookieName is the session cookie's name.
const CookieName = "swarmhook_session"

// CSRFHeader carries the session's CSRF token on unsafe API requests.
const CSRFHeader = "X-CSRF-Token"

// ErrCSRF is an unsafe request with a session cookie but without the
// session's CSRF token: a cross-site request, refused.
var ErrCSRF = errors.New("dashboard: cross-site request refused: the session's " + CSRFHeader + " header is missing or wrong")

// session is one signed-in browser. It keeps the token's name and
// scopes, never the token.
type session struct {
	name    string
	scopes  []config.Scope
	csrf    string
	expires time.Time
}

// Sessions are the signed-in browsers, in memory: a restart signs
// everyone out. It is safe for concurrent use.
type Sessions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	byID map[string]session
}

// NewSessions returns an empty set of sessions lasting ttl (0 means
// config.DefaultSessionTTL); now is the clock, nil meaning time.Now.
func NewSessions(ttl time.Duration, now func() time.Time) *Sessions {
	if ttl <= 0 {
		ttl = config.DefaultSessionTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{ttl: ttl, now: now, byID: map[string]session{}}
}

// randomID is 32 random bytes, URL-safe.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// MaxSessionsPerToken bounds the live sessions of one token: signing
// in again and again (a script, or a leaked read token) cannot grow
// memory without end, and only that token's oldest sign-in is dropped,
// never another token's.
const MaxSessionsPerToken = 64

// start opens a session for t and returns its cookie.
func (s *Sessions) start(t config.Token, secure bool) *http.Cookie {
	id := randomID()
	now := s.now()
	exp := now.Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	var mine []string          // t's live sessions
	for k, v := range s.byID { // drop expired ones while here
		switch {
		case !now.Before(v.expires):
			delete(s.byID, k)
		case v.name == t.Name:
			mine = append(mine, k)
		}
	}
	if len(mine) >= MaxSessionsPerToken {
		slices.SortFunc(mine, func(a, b string) int { return s.byID[a].expires.Compare(s.byID[b].expires) })
		for _, k := range mine[:len(mine)-MaxSessionsPerToken+1] {
			delete(s.byID, k)
		}
	}
	s.byID[id] = session{name: t.Name, scopes: append([]config.Scope(nil), t.Scopes...), csrf: randomID(), expires: exp}
	return &http.Cookie{Name: CookieName, Value: id, Path: "/", Expires: exp, MaxAge: int(s.ttl.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure}
}

// end closes the request's session, if any, and returns the cookie that
// clears it in the browser.
func (s *Sessions) end(r *http.Request) *http.Cookie {
	if c, err := r.Cookie(CookieName); err == nil {
		s.mu.Lock()
		delete(s.byID, c.Value)
		s.mu.Unlock()
	}
	return &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

// lookup returns the request's live session.
func (s *Sessions) lookup(r *http.Request) (session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.byID[c.Value]
	if !ok {
		return session{}, false
	}
	if !s.now().Before(se.expires) {
		delete(s.byID, c.Value)
		return session{}, false
	}
	return se, true
}

// Authenticate returns the token (its name and scopes; Token is empty)
// that the request's session cookie stands for; ok is false without a
// live session. For a method other than GET, HEAD and OPTIONS the
// request must also carry the session's CSRF token in the X-CSRF-Token
// header, or the error is ErrCSRF.
func (s *Sessions) Authenticate(r *http.Request) (t config.Token, ok bool, err error) {
	se, ok := s.lookup(r)
	if !ok {
		return config.Token{}, false, nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(se.csrf)) != 1 {
			return config.Token{}, false, ErrCSRF
		}
	}
	return config.Token{Name: se.name, Scopes: se.scopes}, true, nil
}
