// Package caddycognito is a Caddy plugin that puts AWS Cognito (and any
// standard OpenID Connect provider) sign-in in front of a site: bearer token
// verification, browser sign-in, and invitations.
package caddycognito
