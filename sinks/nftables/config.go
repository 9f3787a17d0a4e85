package nftables

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix of the sink's variables (the registry derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_NFTABLES_"

// Config is the nftables sink's configuration, parsed by caarlos0/env under EnvPrefix.
type Config struct {
	Enabled        bool          `env:"ENABLED" envDefault:"false" desc:"Block addresses in nftables sets on this host (needs CAP_NET_ADMIN and the nft command)."`
	NFTPath        string        `env:"NFT_PATH" envDefault:"nft" desc:"The nft command: a name looked up in PATH, or an absolute path."`
	Family         string        `env:"FAMILY" envDefault:"inet" desc:"Family of the nftables table: inet (IPv4 and IPv6), ip (IPv4 only) or ip6 (IPv6 only)."`
	Table          string        `env:"TABLE" envDefault:"threatpipe" desc:"nftables table holding the block sets; threatpipe owns it (with CREATE it rewrites the table's threatpipe_input and threatpipe_forward chains)."`
	SetV4          string        `env:"SET_V4" envDefault:"blocklist_v4" desc:"Set of blocked IPv4 addresses (type ipv4_addr, flags timeout)."`
	SetV6          string        `env:"SET_V6" envDefault:"blocklist_v6" desc:"Set of blocked IPv6 addresses (type ipv6_addr, flags timeout)."`
	Create         bool          `env:"CREATE" envDefault:"true" desc:"At start-up, create the table, the sets and input/forward chains (priority -10) that drop traffic from the sets' addresses; idempotent. When false the sets must already exist."`
	NetNS          string        `env:"NETNS" desc:"Named network namespace to run nft in (ip netns exec); empty: the host's own namespace."`
	DefaultTTL     time.Duration `env:"DEFAULT_TTL" envDefault:"24h" desc:"How long a block lasts when the playbook gives no expiry; the kernel drops the address when it lapses."`
	CommandTimeout time.Duration `env:"COMMAND_TIMEOUT" envDefault:"10s" desc:"Longest one nft invocation may take."`
}

// nameRE is what table and set names may be: letters, digits and underscores, so that they need
// no quoting in an nft script.
var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// netnsRE is what ip-netns accepts as a namespace name (a file name under /run/netns).
var netnsRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)

// Resolve validates the values, with errors that name the variable. It is idempotent.
func (c *Config) Resolve() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", EnvPrefix, name, fmt.Sprintf(format, args...)))
	}
	if c.NFTPath == "" {
		add("NFT_PATH", "must not be empty")
	}
	switch c.Family {
	case "inet", "ip", "ip6":
	default:
		add("FAMILY", "%q is not one of inet, ip, ip6", c.Family)
	}
	for _, n := range []struct{ name, v string }{{"TABLE", c.Table}, {"SET_V4", c.SetV4}, {"SET_V6", c.SetV6}} {
		if !nameRE.MatchString(n.v) {
			add(n.name, "%q must start with a letter and hold only letters, digits and underscores (at most 64)", n.v)
		}
	}
	if c.SetV4 == c.SetV6 && c.Family == "inet" {
		add("SET_V6", "must differ from THREATPIPE_SINK_NFTABLES_SET_V4")
	}
	if c.NetNS != "" && (!netnsRE.MatchString(c.NetNS) || c.NetNS == "." || c.NetNS == "..") {
		add("NETNS", "%q is not a valid namespace name", c.NetNS)
	}
	if c.DefaultTTL <= 0 {
		add("DEFAULT_TTL", "must be greater than zero")
	} else if c.DefaultTTL > MaxTimeout {
		add("DEFAULT_TTL", "%s is longer than the %s an element timeout may be", c.DefaultTTL, MaxTimeout)
	}
	if c.CommandTimeout <= 0 {
		add("COMMAND_TIMEOUT", "must be greater than zero")
	}
	return errors.Join(errs...)
}

// Configured reports whether the operator turned the sink on: it changes the host's firewall, so
// it is never on by default.
func (c *Config) Configured() bool { return c.Enabled }

// hasV4 and hasV6 say which address families the configured table family can hold.
func (c *Config) hasV4() bool { return c.Family != "ip6" }
func (c *Config) hasV6() bool { return c.Family != "ip" }
