package cognitolocal

import (
	"context"
	"errors"
	"fmt"
)

// SeedSpec describes a pool, one app client, users and groups to create.
type SeedSpec struct {
	PoolName   string
	ClientName string
	// ClientSecret makes the app client confidential.
	ClientSecret bool
	// ClientOptions carries callback URLs and OAuth flows for the client.
	ClientOptions ClientOptions
	Users         []SeedUser
}

// SeedUser is a user with a permanent password and groups.
type SeedUser struct {
	Email    string
	Password string
	Groups   []string
	// Attributes are extra attributes (e.g. "name", "custom:tenant").
	Attributes map[string]string
}

// Seeded is what Seed found or created.
type Seeded struct {
	Pool   UserPool
	Client AppClient
	Users  map[string]User // by email
}

// Seed creates what spec describes and reuses what already exists (by pool
// name, client name, username and group name), so it can run again on a
// persistent cognito-local state.
func Seed(ctx context.Context, c *Client, spec SeedSpec) (Seeded, error) {
	out := Seeded{Users: map[string]User{}}
	pools, err := c.ListUserPools(ctx)
	if err != nil {
		return out, err
	}
	for _, p := range pools {
		if p.Name == spec.PoolName {
			out.Pool = p
			break
		}
	}
	if out.Pool.ID == "" {
		if out.Pool, err = c.CreateUserPool(ctx, spec.PoolName); err != nil {
			return out, err
		}
	}
	clients, err := c.ListUserPoolClients(ctx, out.Pool.ID)
	if err != nil {
		return out, err
	}
	for _, cl := range clients {
		if cl.ClientName == spec.ClientName {
			if out.Client, err = c.DescribeUserPoolClient(ctx, out.Pool.ID, cl.ClientID); err != nil {
				return out, err
			}
			break
		}
	}
	if out.Client.ClientID == "" {
		opts := spec.ClientOptions
		opts.GenerateSecret = opts.GenerateSecret || spec.ClientSecret
		if out.Client, err = c.CreateUserPoolClient(ctx, out.Pool.ID, spec.ClientName, opts); err != nil {
			return out, err
		}
	}
	for _, su := range spec.Users {
		u, err := c.AdminCreateUser(ctx, out.Pool.ID, su.Email, su.Attributes)
		if isKind(err, "UsernameExistsException") {
			u, err = c.AdminGetUser(ctx, out.Pool.ID, su.Email)
		}
		if err != nil {
			return out, fmt.Errorf("user %s: %w", su.Email, err)
		}
		if err := c.AdminSetUserPassword(ctx, out.Pool.ID, su.Email, su.Password); err != nil {
			return out, fmt.Errorf("user %s: %w", su.Email, err)
		}
		for _, g := range su.Groups {
			if err := c.CreateGroup(ctx, out.Pool.ID, g); err != nil && !isKind(err, "GroupExistsException") {
				return out, fmt.Errorf("group %s: %w", g, err)
			}
			if err := c.AdminAddUserToGroup(ctx, out.Pool.ID, su.Email, g); err != nil {
				return out, fmt.Errorf("group %s: %w", g, err)
			}
		}
		out.Users[su.Email] = u
	}
	return out, nil
}

func isKind(err error, kind string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Kind() == kind
}
