package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/govgrid/govgrid/api"
	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/api/grpcapi"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/replication"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Accounts, site keys and revocations travel as configuration documents, like the catalogue:
//
//	accounts/<user>          auth.Account (with its argon2id hash), owned by the district or
//	                         by a township for the staff of its subtree
//	auth/keys/<site>         {"public_key"}: the site's signing key, published by a district or
//	                         township to the sites beneath it
//	auth/revoked/<token id>  {"expires_at"}: a token signed out before it expired
//
// So a member of staff signs in at their own site while its uplink is cut, and a token is
// verified, offline, at the site that signed it and at every site beneath it. A community's
// tokens are good at the community (it publishes nothing: nothing is beneath it).
const (
	accountPrefix = "accounts/"
	keyPrefix     = "auth/keys/"
	revokedPrefix = "auth/revoked/"
)

// accountBook is what the configuration in force says about who may sign in.
type accountBook struct {
	accounts map[string]auth.Account
	keys     map[string]ed25519.PublicKey
	revoked  map[string]bool
	// keepers are the sites whose documents the accounts are, by user.
	keepers map[string]string
	// owners are the sites whose documents reach this site: itself and its ancestors.
	owners map[string]bool
}

func (n *Node) buildAccounts(view *api.ConfigView) (*accountBook, error) {
	b := &accountBook{accounts: map[string]auth.Account{}, keys: map[string]ed25519.PublicKey{}, revoked: map[string]bool{},
		keepers: map[string]string{}, owners: map[string]bool{n.cfg.Site: true}}
	for owner := range view.Versions {
		b.owners[owner] = true
	}
	for _, d := range view.Docs {
		switch {
		case strings.HasPrefix(d.Path, accountPrefix):
			var a auth.Account
			if err := json.Unmarshal(d.Value, &a); err != nil {
				n.logger.Warn("an account does not decode", "path", d.Path, "owner", d.Owner, "error", err)
				continue
			}
			b.accounts[a.User], b.keepers[a.User] = a, d.Owner
		case strings.HasPrefix(d.Path, keyPrefix):
			var k struct {
				PublicKey []byte `json:"public_key"`
			}
			if json.Unmarshal(d.Value, &k) == nil && len(k.PublicKey) == ed25519.PublicKeySize && d.Owner == strings.TrimPrefix(d.Path, keyPrefix) {
				b.keys[d.Owner] = k.PublicKey
			}
		case strings.HasPrefix(d.Path, revokedPrefix):
			b.revoked[strings.TrimPrefix(d.Path, revokedPrefix)] = true
		}
	}
	return b, nil
}

func (n *Node) accountBook() (*accountBook, error) { return n.accounts.get(n, n.buildAccounts) }

// publishSiteKey is leader work: commit the site's signing key if it has none and, at a district
// or township, publish its public half to the sites beneath.
func (n *Node) publishSiteKey(stop <-chan struct{}) {
	for attempt := 0; ; attempt++ {
		err := n.ensureSiteKey()
		if err == nil {
			return
		}
		n.logger.Warn("could not set up the site's signing key; retrying", "error", err)
		select {
		case <-stop:
			return
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 30*time.Second)):
		}
	}
}

func (n *Node) ensureSiteKey() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, err := n.state.EnsureSiteKey(ctx)
	if err != nil || n.cfg.Tier == tier.Community {
		return err
	}
	pub := key.Public().(ed25519.PublicKey)
	book, err := n.accountBook()
	if err != nil {
		return err
	}
	if k, ok := book.keys[n.cfg.Site]; ok && k.Equal(pub) {
		return nil
	}
	v, _ := json.Marshal(map[string][]byte{"public_key": pub})
	_, err = n.state.PutConfig(ctx, keyPrefix+n.cfg.Site, v, false)
	return err
}

// keyOf is the public key of a site whose tokens this site takes: its own, or an ancestor's.
func (n *Node) keyOf(book *accountBook) func(string) (ed25519.PublicKey, bool) {
	return func(site string) (ed25519.PublicKey, bool) {
		if site == n.cfg.Site {
			k, ok, err := n.state.SiteKey()
			if err != nil || !ok {
				return nil, false
			}
			return k.Public().(ed25519.PublicKey), true
		}
		k, ok := book.keys[site]
		return k, ok
	}
}

// errSignIn is the answer to a wrong user, a wrong password and a disabled account alike.
var errSignIn = sitestate.Errorf(sitestate.CodeUnauthorized, "wrong user or password")

// maxSignInFailures is how many failed sign-ins lock an account at a node for citizenWindow.
const maxSignInFailures = 5

// maxConcurrentHashes bounds the argon2id hashes a node computes at once (19 MiB each): a flood
// of sign-ins queues instead of exhausting memory.
const maxConcurrentHashes = 4

// Login signs a member of staff in at this site and returns a token signed by it.
func (n *Node) Login(ctx context.Context, user, password, client string) (*api.LoginAnswer, error) {
	now := time.Now()
	keys := []gateKey{gk("u:", user, maxSignInFailures), gk("c:", client, maxFailuresPerClient)}
	if auth.ValidateUser(user) != nil || len(password) > 1024 {
		keys = keys[1:] // no such account can exist: only the client is counted
	}
	if !n.signIns.attempt(now, keys...) {
		return nil, sitestate.Errorf(sitestate.CodeRateLimited, "too many failed sign-ins: the account is locked here for %v", citizenWindow)
	}
	if len(keys) == 1 {
		return nil, errSignIn
	}
	book, err := n.accountBook()
	if err != nil {
		n.signIns.forgive(now, keys...)
		return nil, err
	}
	a, ok := book.accounts[user]
	// Hash even for an unknown user, once, so that the answer takes as long either way.
	hash := a.PasswordHash
	if !ok {
		hash = dummyHash()
	}
	select {
	case n.argonSlots <- struct{}{}:
	case <-ctx.Done():
		n.signIns.forgive(now, keys...)
		return nil, ctx.Err()
	}
	right := auth.CheckPassword(hash, password)
	<-n.argonSlots
	switch {
	case !right || !ok || a.Disabled:
		return nil, errSignIn
	case !book.owners[a.Site] && !n.inSubtree(a.Site):
		return nil, sitestate.Errorf(sitestate.CodeForbidden, "%s works at %s: sign in there, or at a site above it", user, a.Site)
	}
	n.signIns.forgive(now, keys...)
	key, err := n.state.EnsureSiteKey(ctx)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	c := &auth.Claims{ID: hex.EncodeToString(id), Grid: n.cfg.GridName, User: a.User, Name: a.Name, Site: a.Site, Roles: a.Roles,
		Issuer: n.cfg.Site, IssuedAt: now.UTC(), ExpiresAt: now.UTC().Add(auth.TokenLife)}
	tok, err := auth.Sign(c, key)
	if err != nil {
		return nil, err
	}
	return &api.LoginAnswer{Token: tok, ExpiresAt: c.ExpiresAt, User: a.User, Name: a.Name, Site: a.Site, Roles: a.Roles}, nil
}

// dummyHash is checked against when the user is unknown. Made on the first such sign-in, not at
// start: argon2id takes 19 MiB, which an idle node should not hold.
var dummyHash = sync.OnceValue(func() string { return auth.HashPassword("no such user", make([]byte, auth.SaltLen)) })

// Authenticate verifies a bearer token: signed by this site or an ancestor, of this grid, not
// expired, not signed out, issued after its account's last password change, the account still
// there and enabled.
func (n *Node) Authenticate(token string) (*auth.Claims, error) {
	book, err := n.accountBook()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	c, ok := n.verified.get(token, now)
	if !ok {
		if c, err = auth.Verify(token, n.cfg.GridName, now, n.keyOf(book)); err != nil {
			return nil, sitestate.Errorf(sitestate.CodeUnauthorized, "%v", err)
		}
		n.verified.put(token, c)
	}
	a, ok := book.accounts[c.User]
	switch {
	case book.revoked[c.ID]:
		return nil, sitestate.Errorf(sitestate.CodeUnauthorized, "the token was signed out")
	case !ok || a.Disabled:
		return nil, sitestate.Errorf(sitestate.CodeUnauthorized, "the account %s is gone or disabled", c.User)
	case a.Site != c.Site:
		// Another account of the same name in force here (a township's beside the district's):
		// the token is not this one's.
		return nil, sitestate.Errorf(sitestate.CodeUnauthorized, "the account %s here is not the one that signed in", c.User)
	case c.IssuedAt.Before(a.TokensAfter):
		return nil, sitestate.Errorf(sitestate.CodeUnauthorized, "the token was revoked (the password changed): sign in again")
	}
	c.Roles = a.Roles // the account's roles now, not when it signed in
	return c, nil
}

// verifiedTokens remembers tokens whose signature and expiry checked out, so that a request pays
// the ed25519 check (some 50 µs of CPU) once per token, not once per request. What can change
// while a token lives (signed out, the account disabled, the password changed, the roles) is
// checked on every request all the same. Bounded: full, it starts again empty.
type verifiedTokens struct {
	mu sync.Mutex
	m  map[[32]byte]auth.Claims
}

// maxVerifiedTokens bounds the tokens remembered (a few hundred bytes each).
const maxVerifiedTokens = 10_000

// get returns a copy of the claims of token if it was verified and has not expired at now.
func (v *verifiedTokens) get(token string, now time.Time) (*auth.Claims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.m[sha256.Sum256([]byte(token))]
	if !ok || !now.Before(c.ExpiresAt) {
		return nil, false
	}
	c.Roles = slices.Clone(c.Roles)
	return &c, true
}

func (v *verifiedTokens) put(token string, c *auth.Claims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerifiedTokens {
		v.m = make(map[[32]byte]auth.Claims)
	}
	cp := *c
	cp.Roles = slices.Clone(c.Roles)
	v.m[sha256.Sum256([]byte(token))] = cp
}

// Logout revokes a token: the site that signed it writes the revocation, which reaches the
// sites beneath it.
func (n *Node) Logout(ctx context.Context, c *auth.Claims) error {
	if c.Issuer != n.cfg.Site {
		return sitestate.Errorf(sitestate.CodeConflict, "sign out at %s, the site that signed the token", c.Issuer)
	}
	v, _ := json.Marshal(map[string]time.Time{"expires_at": c.ExpiresAt})
	_, err := n.state.PutConfig(ctx, revokedPrefix+c.ID, v, false)
	return err
}

// Bootstrap creates the grid's first account, an administrator of the district, with a random
// password, once: while no account exists anywhere in force here.
func (n *Node) Bootstrap(ctx context.Context) (*api.BootstrapAnswer, error) {
	if n.cfg.Tier != tier.District {
		return nil, sitestate.Errorf(sitestate.CodeForbidden, "%s is not the district: the first account is created there", n.cfg.Site)
	}
	book, err := n.accountBook()
	if err != nil {
		return nil, err
	}
	if len(book.accounts) > 0 {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "the grid has accounts already: bootstrap is done once")
	}
	pw, err := RandomPassword()
	if err != nil {
		return nil, err
	}
	a := auth.Account{User: "admin", Name: "系统管理员", Site: n.cfg.Site, Roles: []auth.Role{auth.RoleAdmin}}
	if err := n.putAccount(ctx, a, pw, true); err != nil {
		return nil, err
	}
	return &api.BootstrapAnswer{User: a.User, Password: pw}, nil
}

// CreateAccount adds an account at this site (the district, or a township for its subtree), by
// an administrator of this site.
func (n *Node) CreateAccount(ctx context.Context, by *auth.Claims, req api.AccountRequest) (*auth.Account, error) {
	if err := n.adminHere(by); err != nil {
		return nil, err
	}
	a := auth.Account{User: req.User, Name: strings.TrimSpace(req.Name), Site: req.Site, Roles: req.Roles}
	var fe casework.FieldErrors
	for _, p := range a.Validate() {
		fe = append(fe, casework.FieldError{Field: p.Field, Reason: p.Reason})
	}
	if err := auth.ValidatePassword(req.Password); err != nil {
		fe = append(fe, casework.FieldError{Field: "password", Reason: err.Error()})
	}
	if a.Site != "" && a.Site != n.cfg.Site && !n.inSubtree(a.Site) {
		fe = append(fe, casework.FieldError{Field: "site", Reason: fmt.Sprintf("%s is not %s or a site beneath it", a.Site, n.cfg.Site)})
	}
	if len(fe) > 0 {
		return nil, &sitestate.Error{Code: sitestate.CodeInvalid, Message: "invalid account", Fields: fe}
	}
	book, err := n.accountBook()
	if err != nil {
		return nil, err
	}
	if _, ok := book.accounts[a.User]; ok {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "the user %s exists", a.User)
	}
	if err := n.putAccount(ctx, a, req.Password, true); err != nil {
		return nil, err
	}
	pub := a.Public()
	return &pub, nil
}

// Accounts lists the accounts in force here, without their hashes.
func (n *Node) Accounts(by *auth.Claims) ([]auth.Account, error) {
	if !by.Has(auth.RoleAdmin) && !by.Has(auth.RoleSupervisor) {
		return nil, sitestate.Errorf(sitestate.CodeForbidden, "listing accounts needs the admin or supervisor role")
	}
	book, err := n.accountBook()
	if err != nil {
		return nil, err
	}
	out := make([]auth.Account, 0, len(book.accounts))
	for _, a := range book.accounts {
		if a.Site == n.cfg.Site || n.inSubtree(a.Site) || by.Site == a.Site {
			out = append(out, a.Public())
		}
	}
	sortAccounts(out)
	return out, nil
}

// ChangePassword sets a new password for the signed-in account; every earlier token of it stops
// working. The account's document is its owner's: a site beneath the owner passes the change on
// to it (Cluster.ChangePassword), and the owner checks the old password itself.
func (n *Node) ChangePassword(ctx context.Context, by *auth.Claims, oldPassword, newPassword string) error {
	if err := auth.ValidatePassword(newPassword); err != nil {
		return &sitestate.Error{Code: sitestate.CodeInvalid, Message: "invalid password", Fields: casework.FieldErrors{{Field: "new_password", Reason: err.Error()}}}
	}
	owner, err := n.accountOwner(by.User)
	if err != nil {
		return err
	}
	if owner == n.cfg.Site {
		return n.changePasswordHere(ctx, by.User, oldPassword, newPassword)
	}
	var lastErr error
	for _, m := range n.siteMembers(owner, "") {
		conn, err := n.peers.conn(m.Meta.GRPC)
		if err != nil {
			lastErr = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = pb.NewClusterClient(conn).ChangePassword(cctx, &pb.ChangePasswordRequest{User: by.User, OldPassword: oldPassword, NewPassword: newPassword})
		cancel()
		if err == nil {
			return nil
		}
		switch status.Code(err) {
		case codes.PermissionDenied, codes.InvalidArgument, codes.ResourceExhausted, codes.NotFound, codes.FailedPrecondition:
			return fromRemote(err) // the owner's answer
		}
		n.peers.forgetIfTimedOut(conn, err)
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no node of %s is reachable", owner)
	}
	return fmt.Errorf("%w: the account is kept by %s, which cannot be reached now: %v", replication.ErrNoLeader, owner, lastErr)
}

// changePasswordHere changes the password of user, whose account this site keeps, once the old
// password checks; wrong old passwords count toward the account's lock-out at this node.
func (n *Node) changePasswordHere(ctx context.Context, user, oldPassword, newPassword string) error {
	if err := auth.ValidatePassword(newPassword); err != nil {
		return &sitestate.Error{Code: sitestate.CodeInvalid, Message: "invalid password", Fields: casework.FieldErrors{{Field: "new_password", Reason: err.Error()}}}
	}
	now := time.Now()
	key := gk("u:", user, maxSignInFailures)
	if !n.signIns.attempt(now, key) {
		return sitestate.Errorf(sitestate.CodeRateLimited, "too many failed attempts: the account is locked here for %v", citizenWindow)
	}
	book, err := n.accountBook()
	if err != nil {
		n.signIns.forgive(now, key)
		return err
	}
	a, ok := book.accounts[user]
	if !ok || !auth.CheckPassword(a.PasswordHash, oldPassword) {
		return sitestate.Errorf(sitestate.CodeForbidden, "the old password is wrong")
	}
	n.signIns.forgive(now, key)
	if book.keepers[user] != n.cfg.Site {
		return sitestate.Errorf(sitestate.CodeConflict, "%s does not keep the account %s", n.cfg.Site, user)
	}
	// Tokens issued from now on are good (a sign-in on a node whose clock is behind this one's
	// by more than the time between the change and the sign-in is refused: sign in again).
	a.TokensAfter = time.Now().UTC()
	return n.putAccount(ctx, a, newPassword, false)
}

// authEndpoint serves Cluster.ChangePassword: a password change passed on by a site beneath.
type authEndpoint struct{ n *Node }

func (e *authEndpoint) ChangePassword(ctx context.Context, req *pb.ChangePasswordRequest) (*pb.ChangePasswordResponse, error) {
	if err := e.n.changePasswordHere(ctx, req.GetUser(), req.GetOldPassword(), req.GetNewPassword()); err != nil {
		return nil, grpcapi.Err(err)
	}
	return &pb.ChangePasswordResponse{}, nil
}

// fromRemote turns another site's gRPC refusal back into the refusal it was.
func fromRemote(err error) error {
	st := status.Convert(err)
	code := map[codes.Code]string{codes.PermissionDenied: sitestate.CodeForbidden, codes.InvalidArgument: sitestate.CodeInvalid,
		codes.ResourceExhausted: sitestate.CodeRateLimited, codes.NotFound: sitestate.CodeNotFound, codes.FailedPrecondition: sitestate.CodeConflict}[st.Code()]
	return sitestate.Errorf(code, "%s", st.Message())
}

// HasAccounts says whether any account is in force here.
func (n *Node) HasAccounts() bool {
	book, err := n.accountBook()
	return err != nil || len(book.accounts) > 0 // when in doubt, accounts exist
}

// adminHere checks that by is an administrator of this site, which keeps accounts (the district
// or a township).
func (n *Node) adminHere(by *auth.Claims) error {
	switch {
	case !by.Has(auth.RoleAdmin):
		return sitestate.Errorf(sitestate.CodeForbidden, "managing accounts needs the admin role")
	case n.cfg.Tier == tier.Community:
		return sitestate.Errorf(sitestate.CodeForbidden, "%s is a community: accounts are kept by the district, or a township for its subtree", n.cfg.Site)
	case by.Site != n.cfg.Site:
		return sitestate.Errorf(sitestate.CodeForbidden, "%s administers %s, not %s", by.User, by.Site, n.cfg.Site)
	}
	return nil
}

// putAccount writes a with password hashed (a fresh salt), as this site's document, and returns
// once this node has applied it (up to accountVisibleWithin): whoever was told "created" can sign
// in at the node that said so.
//
// With create, the write is refused (a conflict) if the account exists already: of two who create
// the same account at once, the second hears so instead of overwriting the first.
func (n *Node) putAccount(ctx context.Context, a auth.Account, password string, create bool) error {
	salt := make([]byte, auth.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	a.PasswordHash = auth.HashPassword(password, salt)
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := n.state.PutConfigMany(ctx, []sitestate.ConfigChange{{Path: accountPrefix + a.User, Value: v, Create: create}}); err != nil {
		return err
	}
	deadline := time.Now().Add(accountVisibleWithin)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if book, err := n.accountBook(); err == nil && book.accounts[a.User].PasswordHash == a.PasswordHash {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// accountVisibleWithin bounds the wait for a written account to be applied on the node that wrote
// it (a follower applies the leader's commit a moment later).
const accountVisibleWithin = 2 * time.Second

// accountOwner is the site whose document of user is in force here.
func (n *Node) accountOwner(user string) (string, error) {
	book, err := n.accountBook()
	if err != nil {
		return "", err
	}
	if owner, ok := book.keepers[user]; ok {
		return owner, nil
	}
	return "", sitestate.Errorf(sitestate.CodeNotFound, "no account %s", user)
}

// inSubtree says whether site is beneath this one, by this site's registry.
func (n *Node) inSubtree(site string) bool {
	return n.beneath(n.registryParents(), site, n.cfg.Site)
}

// RandomPassword draws a password of 14 characters that are easy to read aloud and type.
func RandomPassword() (string, error) {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b strings.Builder
	for range 14 {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String(), nil
}

func sortAccounts(as []auth.Account) {
	sort.Slice(as, func(i, j int) bool {
		if as[i].Site != as[j].Site {
			return as[i].Site < as[j].Site
		}
		return as[i].User < as[j].User
	})
}
