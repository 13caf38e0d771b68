package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/govgrid/govgrid/api"
	"github.com/govgrid/govgrid/auth"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/sitestate"
	qrcode "github.com/skip2/go-qrcode"
)

// SealService is what the seal's endpoints need: the node implements it.
type SealService interface {
	// SealKeys is the grid's keys as this site knows them.
	SealKeys() (*api.SealKeys, error)
	// RevokeSealKey revokes a site's key (an administrator at the district).
	RevokeSealKey(ctx context.Context, by *auth.Claims, site string, key []byte, reason string) (*api.SealKey, error)
}

func (s *server) routeSeal(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/seal/keys", s.sealKeys)
	mux.HandleFunc("POST /v1/seal/keys/{site}/revoke", s.staff(s.revokeSealKey))
	mux.HandleFunc("GET /v1/cases/{number}/certificate", s.certificate)
}

// sealKeys: GET /v1/seal/keys, open to anyone (public keys): what `govgrid verify` checks a
// certificate against offline.
func (s *server) sealKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.cfg.Seal.SealKeys()
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, keys)
}

func (s *server) revokeSealKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PublicKey []byte `json:"public_key"`
		Reason    string `json:"reason"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	by := auth.FromContext(r.Context())
	if by == nil {
		s.writeError(w, sitestate.Errorf(sitestate.CodeUnauthorized, "sign in first"))
		return
	}
	k, err := s.cfg.Seal.RevokeSealKey(r.Context(), by, r.PathValue("site"), req.PublicKey, req.Reason)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.audit(r, by, sitestate.AuditConfigChanged, "seal/revoked/"+k.Site+"/"+k.KeyID, req.Reason)
	writeJSON(w, http.StatusOK, k)
}

// certificate: GET /v1/cases/{number}/certificate, for the citizen with the query code or for
// staff who may read the case: the sealed decision, checked against the keys this site knows;
// ?format=html (or a browser's Accept) is the printable certificate with a QR code of the seal.
func (s *server) certificate(w http.ResponseWriter, r *http.Request) {
	number := r.PathValue("number")
	if _, _, _, err := casework.ParseNumber(number); err != nil {
		s.writeError(w, casework.FieldErrors{{Field: "number", Reason: "is not a case number (<site>-<yyyymmdd>-<6 digits>)"}})
		return
	}
	var seal *casework.Seal
	var status casework.Status
	if code, ok := queryCode(r); ok {
		v, err := s.cfg.Cases.CitizenView(r.Context(), number, code, clientAddr(r))
		if err != nil {
			s.writeError(w, err)
			return
		}
		seal, status = v.Seal, v.Status
	} else {
		r, ok := s.signedIn(w, r)
		if !ok {
			return
		}
		c, err := s.cfg.Cases.GetCase(r.Context(), number)
		if err != nil {
			s.writeError(w, err)
			return
		}
		seal, status = c.Seal, c.Status
	}
	if seal == nil {
		s.writeError(w, sitestate.Errorf(sitestate.CodeConflict, "case %s is %s: it has no sealed decision yet", number, status))
		return
	}
	keys, err := s.cfg.Seal.SealKeys()
	if err != nil {
		s.writeError(w, err)
		return
	}
	ans := api.CertificateAnswer{Seal: seal, Status: string(status), Verified: verdict(keys.Verify(seal))}
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "html" || r.URL.Query().Get("format") == "" && strings.Contains(r.Header.Get("Accept"), "text/html") {
		s.certificatePage(w, &ans)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// verdict words a seal's check.
func verdict(err error) string {
	switch {
	case err == nil:
		return "valid"
	case errors.Is(err, casework.ErrSealRevoked):
		return "revoked"
	case errors.Is(err, casework.ErrSealUnknownKey):
		return "unknown_key"
	case errors.Is(err, casework.ErrSealForged):
		return "forged"
	}
	return "invalid: " + err.Error()
}

var decisionNames = map[string]string{casework.DecisionApproved: "准予许可 / 办结 Approved", casework.DecisionDenied: "不予许可 Denied"}

var verdictNames = map[string]string{"valid": "电子印章有效 Seal valid", "revoked": "印章密钥已吊销 Seal key revoked",
	"unknown_key": "印章密钥未知 Unknown seal key", "forged": "印章无效 Seal invalid"}

var certificateTmpl = template.Must(template.New("certificate").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>办理结果 {{.Seal.Certificate.Number}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:"Noto Sans CJK SC","Noto Sans SC",sans-serif;max-width:720px;margin:2em auto;padding:0 1em;color:#111}
h1{text-align:center;letter-spacing:.2em;font-size:1.6em;margin-bottom:.2em}
.sub{text-align:center;color:#555;margin-top:0}
table{width:100%;border-collapse:collapse;margin:1.5em 0}td{border:1px solid #888;padding:.5em .7em}td:first-child{width:30%;background:#f4f4f4}
.seal{display:flex;gap:1.5em;align-items:center;margin-top:1em}.seal svg{width:180px;height:180px;flex:none}
.ok{color:#0a6b2d;font-weight:bold}.bad{color:#b00020;font-weight:bold}.mono{font-family:monospace;font-size:.8em;word-break:break-all}
.hint{color:#555}@media print{.hint{display:none}body{margin:0}}
</style></head><body>
<h1>办理结果通知书</h1><p class="sub">Notice of decision · {{.Seal.Certificate.Grid}}</p>
<table>
<tr><td>办件编号 Number</td><td id="cert-number">{{.Seal.Certificate.Number}}</td></tr>
<tr><td>事项 Item</td><td>{{.Seal.Certificate.ItemName}} ({{.Seal.Certificate.ItemCode}})</td></tr>
<tr><td>申请人 Applicant</td><td>{{.Seal.Certificate.Applicant}}</td></tr>
<tr><td>决定 Decision</td><td id="cert-decision">{{.Decision}}</td></tr>
<tr><td>决定日期 Date</td><td>{{.Seal.Certificate.DecidedOn}}</td></tr>
<tr><td>决定机关 Site</td><td>{{.Seal.Certificate.Site}}</td></tr>
</table>
<div class="seal">{{.QR}}<div>
<p id="cert-verified" class="{{if eq .Verified "valid"}}ok{{else}}bad{{end}}">{{.VerdictName}}</p>
<p>扫描二维码或运行 <code>govgrid verify</code> 离线核验本通知书。<br><small>Scan the code, or run govgrid verify, to check this notice offline against the grid's keys.</small></p>
<p class="mono">key {{.KeyID}} · sig {{.SigHead}}…</p></div></div>
<p class="hint">打印：Ctrl+P · Print: Ctrl+P</p>
</body></html>`))

// certificatePage writes the printable certificate.
func (s *server) certificatePage(w http.ResponseWriter, ans *api.CertificateAnswer) {
	payload, _ := json.Marshal(ans.Seal)
	qr, err := qrcode.New(string(payload), qrcode.Medium)
	if err != nil {
		s.writeError(w, fmt.Errorf("the seal's QR code: %w", err))
		return
	}
	bits := qr.Bitmap()
	var svg strings.Builder
	fmt.Fprintf(&svg, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="seal QR code"><rect width="100%%" height="100%%" fill="#fff"/><path fill="#000" d="`, len(bits), len(bits))
	for y, row := range bits {
		for x, on := range row {
			if on {
				fmt.Fprintf(&svg, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	svg.WriteString(`"/></svg>`)
	sig := ""
	if len(ans.Seal.Signature) > 0 {
		sig = fmt.Sprintf("%x", ans.Seal.Signature[:8])
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = certificateTmpl.Execute(w, map[string]any{
		"Seal": ans.Seal, "Verified": ans.Verified, "VerdictName": verdictNames[ans.Verified], "Decision": decisionNames[ans.Seal.Certificate.Decision],
		"QR": template.HTML(svg.String()), "KeyID": fmt.Sprintf("%x", ans.Seal.PublicKey[:min(8, len(ans.Seal.PublicKey))]), "SigHead": sig,
	})
}
