package userstore

import "context"

// Backend is everything the Caddy handlers, the admin API and the CLI use.
// *Store implements it; handler tests can substitute a fake. A PostgreSQL
// store is not a second implementation of this interface but a second
// dialect under *Store (see dialect.go).
type Backend interface {
	CreateUser(ctx context.Context, actor string, u NewUser) (*User, error)
	GetUser(ctx context.Context, idOrUsernameOrEmail string) (*User, error)
	GetUserByID(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context, f UserFilter) ([]User, error)
	UpdateUser(ctx context.Context, actor, userID string, upd UserUpdate) (*User, error)
	SetActive(ctx context.Context, actor, userID string, active bool) error
	TouchLogin(ctx context.Context, userID string) error

	GrantRoles(ctx context.Context, actor, userID string, roles ...string) error
	RevokeRoles(ctx context.Context, actor, userID string, roles ...string) error

	LinkIdentity(ctx context.Context, actor, userID, issuer, sub, provider string) error
	UnlinkIdentity(ctx context.Context, actor, issuer, sub string) error
	ListIdentities(ctx context.Context, userID string) ([]Identity, error)
	LookupIdentity(ctx context.Context, issuer, sub string) (*User, error)

	AddServiceAccount(ctx context.Context, actor string, sa NewServiceAccount) (*ServiceAccount, error)
	ListServiceAccounts(ctx context.Context, issuer string) ([]ServiceAccount, error)
	RemoveServiceAccount(ctx context.Context, actor, issuer, clientID string) error
	LookupServiceAccount(ctx context.Context, issuer, clientID string) (*User, error)

	Audit(ctx context.Context, limit int) ([]AuditEvent, error)
	AuditFor(ctx context.Context, target string, limit int) ([]AuditEvent, error)

	Close() error
}

var _ Backend = (*Store)(nil)
