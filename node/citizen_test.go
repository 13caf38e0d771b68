package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/govgrid/govgrid/api/govgridpb"
	"github.com/govgrid/govgrid/casework"
	"github.com/govgrid/govgrid/testgrid"
	"github.com/govgrid/govgrid/tier"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// citizenGet asks GET /v1/cases/{number}?query_code=code at addr and returns the status and body.
func citizenGet(t *testing.T, addr, number, code string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/cases/" + number + "?query_code=" + code)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestCitizenSeesOnlyTheirCase: with its code a citizen reads a case at any site, also once it
// climbed to the district (the holder checks the code); the view is masked and has no staff
// notes; a wrong code reads exactly like an unknown number; failures are limited per number and
// per address, on HTTP and gRPC alike.
func TestCitizenSeesOnlyTheirCase(t *testing.T) {
	g := testgrid.New(t, fourSites)
	district := g.WaitLeader("cd")
	ngj, bgj := g.WaitLeader("cd-dgdj-ngj"), g.WaitLeader("cd-dgdj-bgj")
	waitRegistered(t, g, district, map[string]string{"cd-dgdj": "cd", "cd-dgdj-ngj": "cd-dgdj", "cd-dgdj-bgj": "cd-dgdj"}, 20*time.Second)

	local := submitDecided(t, ngj, 1, "")
	climbed := submitDecided(t, ngj, 2, tier.District)
	if local.QueryCode == "" || climbed.QueryCode == "" {
		t.Fatal("no query code in the submission's answer")
	}
	waitHeld(t, g, district, climbed.Number, "cd", 30*time.Second)

	for _, c := range []struct {
		at   string
		cs   *casework.Case
		site string
	}{
		{ngj.Addrs().HTTP, local, "cd-dgdj-ngj"},
		{bgj.Addrs().HTTP, local, "cd-dgdj-ngj"}, // a sibling asks the holder
		{ngj.Addrs().HTTP, climbed, "cd"},        // the origin asks the district
		{district.Addrs().HTTP, climbed, "cd"},   // the holder checks it itself
	} {
		code, body := citizenGet(t, c.at, c.cs.Number, c.cs.QueryCode)
		var v casework.CitizenView
		if code != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil || v.Number != c.cs.Number || v.HolderSite != c.site || len(v.Timeline) == 0 {
			t.Fatalf("%s at %s: %d %s", c.cs.Number, c.at, code, body)
		}
		for _, secret := range []string{c.cs.Applicant.IDNumber, c.cs.Applicant.Phone, c.cs.Applicant.Name, "actor", "note", "query_code_hash", "request_id", "digest"} {
			if strings.Contains(body, secret) {
				t.Fatalf("the citizen's view shows %q: %s", secret, body)
			}
		}
	}

	// A wrong code and an unknown number answer the same bytes; both count as failures.
	wrongCode := fmt.Sprintf("%06d", (atoi(local.QueryCode)+1)%1_000_000)
	unknown := strings.Replace(local.Number, "-000001", "-999999", 1)
	c1, b1 := citizenGet(t, bgj.Addrs().HTTP, local.Number, wrongCode)
	c2, b2 := citizenGet(t, bgj.Addrs().HTTP, unknown, local.QueryCode)
	if c1 != http.StatusNotFound || c1 != c2 || b1 != b2 {
		t.Fatalf("wrong code: %d %s; unknown number: %d %s", c1, b1, c2, b2)
	}
	if code, _ := citizenGet(t, bgj.Addrs().HTTP, local.Number, "12ab"); code != http.StatusNotFound {
		t.Fatalf("a malformed code: %d, want 404", code)
	}
	// That number has failed twice at bgj (the wrong and the malformed code); three more and it
	// is refused, with the right code too.
	for range 3 {
		citizenGet(t, bgj.Addrs().HTTP, local.Number, wrongCode)
	}
	if code, body := citizenGet(t, bgj.Addrs().HTTP, local.Number, local.QueryCode); code != http.StatusTooManyRequests {
		t.Fatalf("after 5 failures for one number: %d %s, want 429", code, body)
	}
	// Other numbers from the same address go on until the address's own limit.
	if code, _ := citizenGet(t, bgj.Addrs().HTTP, climbed.Number, climbed.QueryCode); code != http.StatusOK {
		t.Fatalf("another number from the same address: %d", code)
	}

	// gRPC: the same view, the same refusals.
	conn, err := grpc.NewClient(ngj.Addrs().GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := pb.NewCasesClient(conn)
	v, err := cl.GetCitizenView(ctx, &pb.GetCitizenViewRequest{Number: climbed.Number, QueryCode: climbed.QueryCode})
	if err != nil || v.GetHolderSite() != "cd" || v.GetApplicant().GetIdNumber() == climbed.Applicant.IDNumber {
		t.Fatalf("gRPC view: %v %v", v, err)
	}
	if _, err := cl.GetCitizenView(ctx, &pb.GetCitizenViewRequest{Number: climbed.Number, QueryCode: wrongCode}); status.Code(err) != codes.NotFound {
		t.Fatalf("gRPC with a wrong code: %v", err)
	}
	if _, err := cl.GetCitizenView(ctx, &pb.GetCitizenViewRequest{Number: "x", QueryCode: wrongCode}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC with a bad number: %v", err)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
