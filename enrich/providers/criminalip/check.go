package criminalip

import (
	"context"
	"fmt"
)

// CheckAccount is `threatpipe providers check` for Criminal IP: the account behind the key and
// its search allowance, as POST /v1/user/me reports them.
func (c *Client) CheckAccount(ctx context.Context) (string, error) {
	a, err := c.Account(ctx)
	if err != nil {
		return "", err
	}
	s := fmt.Sprintf("account %q <%s>, max_search (remaining credits) %d", a.Name, a.Email, a.MaxSearch)
	if a.Plan != "" {
		s += ", plan " + a.Plan
	}
	if a.LastAccess != "" {
		s += ", last access " + a.LastAccess
	}
	return s, nil
}

// QuotaLeft implements enrich.QuotaReporter: the search credits POST /v1/user/me reports
// (max_search), which the quota ledger takes as what is left.
func (c *Client) QuotaLeft(ctx context.Context) (int64, error) {
	a, err := c.Account(ctx)
	if err != nil {
		return 0, err
	}
	return a.MaxSearch, nil
}
