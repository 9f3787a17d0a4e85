package ingest

import (
	"errors"
	"net/http"
)

// ErrAuth marks a Poll error that waiting will not fix: the platform refused the credentials
// (401) or the account's rights (403). Sources wrap it (fmt.Errorf("...: %w", ingest.ErrAuth));
// the runner logs it at error level and retries only every Options.AuthRetry, so an expired key
// is loud without hammering the platform.
var ErrAuth = errors.New("the platform refused the credentials")

// AuthStatus reports whether an HTTP status is an authentication or authorisation refusal.
func AuthStatus(code int) bool {
	return code == http.StatusUnauthorized || code == http.StatusForbidden
}

// IsAuth reports whether err is an authentication refusal.
func IsAuth(err error) bool { return errors.Is(err, ErrAuth) }
