// Package web is the console every node serves at /: plain HTML, CSS and JavaScript embedded in
// the binary (no build step), zh-CN first with English. It reads the node's own JSON API.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the console's files.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FileServerFS(sub)
}
