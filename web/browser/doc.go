// Package browser holds the console's end-to-end tests in a real browser: headless Chromium
// (Debian's chromium package) driven through the DevTools protocol by chromedp, against a grid
// the test starts in process. Each test fails on any JavaScript error or console error and
// saves a screenshot of every page it checks (GOVGRID_SCREENSHOTS, or the test's temporary
// directory, named in the test's output). Without chromium the tests skip, except under CI
// (CI=true), where .ci/run installs it and its absence is a failure.
package browser
