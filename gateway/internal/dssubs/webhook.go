package dssubs

// Webhook URLs and their HTTP client (PROTOCOL.md 6.2 and 12.8, SSRF). A URL must be https
// to a public address. Options.WebhookAllowLocalhost (on in `holdfast dev`) also admits
// http://localhost and http://127.x.x.x, as the protocol's development exception; private,
// link-local, CGNAT, metadata and other local targets stay refused either way. The check
// runs twice: on the URL when a subscription is created, and on every address the dialer
// actually connects to, so a DNS name that later resolves to a private address is refused.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

var dsCGNAT = netip.MustParsePrefix("100.64.0.0/10")

// localhostOK: the development exception.
func localhostName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// dsAddrAllowed decides on one address.
func dsAddrAllowed(a netip.Addr, allowLoopback bool) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return allowLoopback && (a.Is6() || a.As4()[0] == 127)
	}
	return a.IsGlobalUnicast() && !a.IsPrivate() && !dsCGNAT.Contains(a) &&
		!(a.Is4() && (a.As4()[0] == 0 || a.As4()[0] >= 240))
}

// checkWebhookURL validates a subscription's URL.
func checkWebhookURL(raw string, allowLocal bool) error {
	if len(raw) > dsMaxURL {
		return errors.New("webhook.url is too long")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("webhook.url must be an absolute URL")
	}
	if u.User != nil {
		return errors.New("webhook.url must not carry credentials")
	}
	host := u.Hostname()
	addr, perr := netip.ParseAddr(host)
	isIP := perr == nil
	local := localhostName(host) || isIP && addr.Unmap().IsLoopback()
	switch u.Scheme {
	case "https":
	case "http":
		if !(allowLocal && local) {
			return errors.New("webhook.url must use https (http only for localhost in development)")
		}
	default:
		return errors.New("webhook.url must use https")
	}
	if local {
		if !allowLocal {
			return errors.New("webhook.url must not target localhost")
		}
		return nil
	}
	if isIP && !dsAddrAllowed(addr, false) {
		return errors.New("webhook.url must not target private, loopback or link-local hosts")
	}
	return nil
}

// webhookClient posts notifications: no redirects, no proxies, a bounded time, and a
// dialer that refuses disallowed addresses after DNS resolution.
func webhookClient(allowLocal bool, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !dsAddrAllowed(ap.Addr(), allowLocal) {
			return fmt.Errorf("webhook: address %s is not allowed", address)
		}
		return nil
	}}
	tr := &http.Transport{
		DialContext:         func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) },
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
