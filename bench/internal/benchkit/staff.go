package benchkit

import "net/http"

// Every case call to a node's API needs a signed-in member of staff. The benchmarks' in-process
// grids sign in as the test harness's staff of the node's site (testgrid.StaffToken: an account
// with every role, signed in at that node), and send its token with every request: the node
// verifies it (an ed25519 signature) each time, which is the product's cost and stays in what
// is measured. Get the tokens while a grid starts: the first one of a site writes its account
// and hashes a password (argon2id).

// Bearer sets token as req's bearer and returns req.
func Bearer(req *http.Request, token string) *http.Request {
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}
