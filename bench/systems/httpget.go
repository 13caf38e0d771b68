package systems

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// httpGet sends GET url with ctx and returns the answer, whose body is closed, and the first
// 4 KiB of its body: enough for a readiness probe's answer and for an error message.
func httpGet(ctx context.Context, hc *http.Client, url string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp, body, nil
}

// httpOK checks that GET url answers 200.
func httpOK(ctx context.Context, hc *http.Client, url string) error {
	resp, _, err := httpGet(ctx, hc, url)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
