package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// serverFlag is the value of --server (and DML_SERVER, and the config
// file's server:): a URL, or HOST[:PORT] alone, which completeServerURL
// completes. A value that is no server URL is refused when it is set,
// with what to give instead, not later with url.Parse's words.
type serverFlag struct{ p *string }

func (f serverFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

func (f serverFlag) Set(v string) error {
	u, err := completeServerURL(v)
	if err != nil {
		return err
	}
	*f.p = u
	return nil
}

func (serverFlag) Type() string { return "string" }

// completeServerURL returns s as a server URL. Without a scheme, s is
// HOST[:PORT][/PATH], and the scheme is http for a loopback host
// (localhost, 127.0.0.0/8, ::1: a server on this machine, which
// `dml serve` runs without TLS) and https for every other, so a token
// never crosses a network in clear text because a scheme was left out.
func completeServerURL(s string) (string, error) {
	explain := func(why string) error {
		return fmt.Errorf("%q is not a server URL (%s): give http(s)://HOST[:PORT], or HOST[:PORT] alone (http for localhost and 127.0.0.1, https otherwise)", s, why)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", explain("empty")
	}
	if !strings.Contains(s, "://") {
		host, _, _ := strings.Cut(s, "/")
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		scheme := "https"
		if isLoopbackHost(strings.Trim(host, "[]")) {
			scheme = "http"
		}
		s = scheme + "://" + s
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // without url.Parse's restatement of s
		}
		return "", explain(err.Error())
	case u.Scheme != "http" && u.Scheme != "https":
		return "", explain("scheme " + u.Scheme + ", not http or https")
	case u.Host == "" || u.Hostname() == "":
		return "", explain("no host")
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", explain("a server URL has no user, query or fragment")
	}
	if port := u.Port(); port == "" && strings.HasSuffix(u.Host, ":") {
		return "", explain("empty port")
	}
	return u.String(), nil
}

// isLoopbackHost reports whether host (a name or an IP address, without
// brackets or port) is this machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
