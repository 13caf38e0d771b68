package replication

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter lets hashicorp/raft log through the node's slog.Logger. Raft's info lines are
// passed on at info; its debug and trace lines only when slog has debug on.
type hclogAdapter struct {
	l    *slog.Logger
	name string
	args []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogger(l *slog.Logger, name string) *hclogAdapter {
	return &hclogAdapter{l: l, name: name}
}

func (h *hclogAdapter) log(level slog.Level, msg string, args ...any) {
	if !h.l.Enabled(context.Background(), level) {
		return
	}
	all := append(append([]any{"component", h.name}, h.args...), args...)
	h.l.Log(context.Background(), level, msg, all...)
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	switch level {
	case hclog.Trace, hclog.Debug:
		h.log(slog.LevelDebug, msg, args...)
	case hclog.Warn:
		h.log(slog.LevelWarn, msg, args...)
	case hclog.Error:
		h.log(slog.LevelError, msg, args...)
	default:
		h.log(slog.LevelInfo, msg, args...)
	}
}
func (h *hclogAdapter) Trace(msg string, args ...any) { h.log(slog.LevelDebug-4, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...any) { h.log(slog.LevelDebug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...any)  { h.log(slog.LevelInfo, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...any)  { h.log(slog.LevelWarn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...any) { h.log(slog.LevelError, msg, args...) }
func (h *hclogAdapter) IsTrace() bool                 { return false }
func (h *hclogAdapter) IsDebug() bool {
	return h.l.Enabled(context.Background(), slog.LevelDebug)
}
func (h *hclogAdapter) IsInfo() bool          { return h.l.Enabled(context.Background(), slog.LevelInfo) }
func (h *hclogAdapter) IsWarn() bool          { return h.l.Enabled(context.Background(), slog.LevelWarn) }
func (h *hclogAdapter) IsError() bool         { return true }
func (h *hclogAdapter) ImpliedArgs() []any    { return h.args }
func (h *hclogAdapter) Name() string          { return h.name }
func (h *hclogAdapter) SetLevel(hclog.Level)  {}
func (h *hclogAdapter) GetLevel() hclog.Level { return hclog.Info }
func (h *hclogAdapter) ResetNamed(n string) hclog.Logger {
	return &hclogAdapter{l: h.l, name: n, args: h.args}
}
func (h *hclogAdapter) Named(n string) hclog.Logger {
	return &hclogAdapter{l: h.l, name: h.name + "." + n, args: h.args}
}
func (h *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{l: h.l, name: h.name, args: append(append([]any{}, h.args...), args...)}
}
func (h *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelInfo)
}
func (h *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return log.Writer()
}
