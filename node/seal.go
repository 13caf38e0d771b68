package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
	"github.com/govgrid/govgrid/tier"
)

// The grid's seal keys: each site's public key travels up the tree in its registration record;
// the district's leader publishes every key it has seen as the document seal/keys (never
// dropping one: certificates signed with a site's earlier key stay verifiable), which reaches
// every site. An administrator at the district revokes a key with a document
// seal/revoked/<site>/<key id>. So every site checks any certificate of the grid offline.
const (
	sealPrefix        = "seal/"
	sealKeysPath      = "seal/keys"
	sealRevokedPrefix = "seal/revoked/"
)

// sealKeysDoc is the value of seal/keys.
type sealKeysDoc struct {
	Keys []api.SealKey `json:"keys"`
}

// keyID names a public key: the hex of its first 8 bytes.
func keyID(k []byte) string {
	if len(k) < 8 {
		return hex.EncodeToString(k)
	}
	return hex.EncodeToString(k[:8])
}

// publishSealKeys is district leader work: add the keys of newly registered sites (and new keys
// of restored ones) to seal/keys. published is the registry's keys at the last publication: an
// unchanged registry is not looked at again. It returns the keys now published.
func (n *Node) publishSealKeys(published string) (string, error) {
	if n.cfg.Tier != tier.District {
		return published, nil
	}
	recs, err := n.state.Sites()
	if err != nil {
		return published, err
	}
	var seen strings.Builder
	for _, r := range recs {
		seen.WriteString(r.Code + "=" + keyID(r.PublicKey) + ";")
	}
	if seen.String() == published {
		return published, nil
	}
	if err := n.addSealKeys(recs); err != nil {
		return published, err
	}
	return seen.String(), nil
}

func (n *Node) addSealKeys(recs []sitestate.SiteRecord) error {
	view, err := n.configView()
	if err != nil {
		return err
	}
	var doc api.SealKeys
	for _, d := range view.Docs {
		if d.Path == sealKeysPath && d.Owner == n.cfg.Site {
			if err := json.Unmarshal(d.Value, &doc); err != nil {
				n.logger.Warn("seal/keys does not decode; rebuilding it", "error", err)
				doc = api.SealKeys{}
			}
		}
	}
	changed := false
	now := time.Now().UTC()
	for _, r := range recs {
		if len(r.PublicKey) != ed25519.PublicKeySize {
			continue
		}
		if doc.Find(r.Code, r.PublicKey) < 0 {
			doc.Keys = append(doc.Keys, api.SealKey{Site: r.Code, PublicKey: r.PublicKey, KeyID: keyID(r.PublicKey), Since: now})
			changed = true
		}
	}
	if !changed {
		return nil
	}
	v, err := json.Marshal(sealKeysDoc{Keys: doc.Keys})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = n.state.PutConfig(ctx, sealKeysPath, v, false)
	return err
}

// configView is the configuration in force here.
func (n *Node) configView() (*api.ConfigView, error) { return configService{n}.Configuration() }

// SealKeys is what this site knows of the grid's keys: seal/keys with the revocations, and its
// own key (a site trusts itself before the district has published it).
func (n *Node) SealKeys() (*api.SealKeys, error) {
	view, err := n.configView()
	if err != nil {
		return nil, err
	}
	out := &api.SealKeys{Grid: n.cfg.GridName, Keys: []api.SealKey{}}
	revoked := map[string]api.SealKey{}
	for _, d := range view.Docs {
		switch {
		case d.Path == sealKeysPath:
			var doc sealKeysDoc
			if json.Unmarshal(d.Value, &doc) == nil {
				out.Keys = append(out.Keys, doc.Keys...)
			}
		case strings.HasPrefix(d.Path, sealRevokedPrefix):
			var r api.SealKey
			if json.Unmarshal(d.Value, &r) == nil {
				revoked[r.Site+"/"+keyID(r.PublicKey)] = r
			}
		}
	}
	if key, ok, err := n.state.SiteKey(); err == nil && ok {
		pub := key.Public().(ed25519.PublicKey)
		if out.Find(n.cfg.Site, pub) < 0 {
			out.Keys = append(out.Keys, api.SealKey{Site: n.cfg.Site, PublicKey: pub, KeyID: keyID(pub)})
		}
	}
	for i := range out.Keys {
		k := &out.Keys[i]
		k.KeyID = keyID(k.PublicKey)
		if r, ok := revoked[k.Site+"/"+k.KeyID]; ok {
			k.Revoked, k.RevokedReason, k.RevokedAt = true, r.RevokedReason, r.RevokedAt
		}
	}
	slices.SortStableFunc(out.Keys, func(a, b api.SealKey) int { return strings.Compare(a.Site, b.Site) })
	return out, nil
}

// RevokeSealKey revokes a site's key, by an administrator of the district: certificates sealed
// with it show as revoked wherever the revocation reaches.
func (n *Node) RevokeSealKey(ctx context.Context, by *auth.Claims, site string, key []byte, reason string) (*api.SealKey, error) {
	if n.cfg.Tier != tier.District {
		return nil, sitestate.Errorf(sitestate.CodeConflict, "%s is not the district: seal keys are revoked there", n.cfg.Site)
	}
	if err := n.Authorize(by, auth.ActAdminister); err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" {
		return nil, casework.FieldErrors{{Field: "reason", Reason: "is required: whoever checks a certificate sealed with the key is told it"}}
	}
	keys, err := n.SealKeys()
	if err != nil {
		return nil, err
	}
	i := keys.Find(site, key)
	if i < 0 {
		return nil, sitestate.Errorf(sitestate.CodeNotFound, "no key %s of site %s among the grid's keys", keyID(key), site)
	}
	k := keys.Keys[i]
	k.Revoked, k.RevokedReason, k.RevokedAt = true, reason, time.Now().UTC()
	v, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	if _, err := n.state.PutConfig(ctx, sealRevokedPrefix+site+"/"+k.KeyID, v, false); err != nil {
		return nil, err
	}
	return &k, nil
}
