package auth

import (
	"context"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// GRPCCredentials returns the credentials of an incoming gRPC call: the
// "authorization" metadata (Bearer or Basic, as OTLP exporters send their
// headers) and "x-scope-orgid".
func GRPCCredentials(ctx context.Context) Credentials {
	var c Credentials
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		c.Key, c.Malformed = ParseAuthorization(v[0])
	}
	if v := md.Get(strings.ToLower(OrgIDHeader)); len(v) > 0 {
		c.OrgID = strings.TrimSpace(v[0])
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if ta, ok := p.Addr.(*net.TCPAddr); ok {
			c.Remote = ta.AddrPort().Addr()
		} else {
			c.Remote = remoteAddr(p.Addr.String())
		}
	}
	return c
}

// authGRPC authenticates the call of ctx for scope.
func (a *Authenticator) authGRPC(ctx context.Context, scope Scope) (context.Context, error) {
	id, err := a.Authenticate(GRPCCredentials(ctx), scope)
	if err != nil {
		e := err.(*Error)
		code := codes.PermissionDenied
		if e.Status == http.StatusUnauthorized {
			code = codes.Unauthenticated
		}
		return ctx, status.Error(code, e.Msg)
	}
	return WithIdentity(ctx, id), nil
}

// ServerOptions returns the interceptors (unary and stream) that require
// scope of every call of a gRPC server; none on a nil Authenticator.
func (a *Authenticator) ServerOptions(scope Scope) []grpc.ServerOption {
	if a == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := a.authGRPC(ctx, scope)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := a.authGRPC(ss.Context(), scope)
			if err != nil {
				return err
			}
			return h(srv, &stream{ServerStream: ss, ctx: ctx})
		}),
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
