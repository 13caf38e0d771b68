package netfault

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Policy says how calls between nodes misbehave. Cutting a TCP link (Allow) shows what a
// partition does; a Policy shows what a bad link does to messages: requests lost before they
// arrive, answers lost after the work was done, copies, and delays that let later calls
// overtake earlier ones.
type Policy struct {
	// Methods limits the policy to these full gRPC method names ("/govgrid.v1.Cluster/Handoff");
	// empty means every method.
	Methods []string
	// DropRequest is the chance a call fails without reaching its target.
	DropRequest float64
	// DropReply is the chance a call reaches its target and is answered, but the caller sees
	// only an error (the answer was lost).
	DropReply float64
	// Duplicate is the chance a call is delivered twice in a row; LateDuplicate the chance a
	// copy is delivered again later, in the background, up to MaxDelay after the call.
	Duplicate     float64
	LateDuplicate float64
	// MaxDelay delays each call by a random time up to it, so calls made close together
	// arrive in another order.
	MaxDelay time.Duration
}

// Faults applies a Policy to a node's outgoing gRPC calls. The zero value (or a nil *Faults)
// injects nothing; Set changes the policy at any time.
type Faults struct {
	mu     sync.Mutex
	policy Policy

	// Injected counts the faults injected so far, so a test can show its faults happened;
	// Calls counts the calls the policy applied to.
	Injected atomic.Int64
	Calls    atomic.Int64
}

// Set replaces the policy; the zero Policy stops injecting.
func (f *Faults) Set(p Policy) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policy = p
}

func (f *Faults) current(method string) (Policy, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.policy
	if len(p.Methods) > 0 && !slices.Contains(p.Methods, method) {
		return Policy{}, false
	}
	on := p.DropRequest > 0 || p.DropReply > 0 || p.Duplicate > 0 || p.LateDuplicate > 0 || p.MaxDelay > 0
	return p, on
}

func chance(p float64) bool { return p > 0 && rand.Float64() < p }

// UnaryClientInterceptor injects the policy's faults into unary calls.
func (f *Faults) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if f == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		p, on := f.current(method)
		if !on {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		f.Calls.Add(1)
		if p.MaxDelay > 0 {
			select {
			case <-time.After(rand.N(p.MaxDelay)):
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		if chance(p.DropRequest) {
			f.Injected.Add(1)
			return status.Error(codes.Unavailable, "netfault: request dropped")
		}
		if chance(p.LateDuplicate) {
			f.Injected.Add(1)
			copyReply := newReply(reply) // made here: reply is written by the call below
			go func() {
				if p.MaxDelay > 0 {
					time.Sleep(rand.N(p.MaxDelay))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = invoker(ctx, method, req, copyReply, cc, opts...)
			}()
		}
		if chance(p.Duplicate) {
			f.Injected.Add(1)
			_ = invoker(ctx, method, req, newReply(reply), cc, opts...)
		}
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil && chance(p.DropReply) {
			f.Injected.Add(1)
			return status.Error(codes.Unavailable, "netfault: reply dropped")
		}
		return err
	}
}

// newReply returns a fresh message of reply's type for a copy's answer, which is thrown away.
func newReply(reply any) any {
	if m, ok := reply.(proto.Message); ok {
		return m.ProtoReflect().New().Interface()
	}
	return reply
}
