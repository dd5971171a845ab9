module github.com/caddy-cognito/caddy-cognito/tools/testreport

go 1.26.8
