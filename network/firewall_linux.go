package network

import (
	"fmt"
	"os"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// berth's chains. FORWARD jumps to BERTH-FORWARD first thing, so that no
// other chain (Docker's FORWARD policy is DROP) drops the traffic of
// berth's bridges before berth accepts it. BERTH-FORWARD accepts what
// stays on one bridge (BERTH-INTRA), drops what goes from one berth
// bridge to another (networks are isolated), then applies each network's
// rules (BERTH-NET): egress, replies, published ports, or nothing in or
// out for an internal network.
const (
	chainForward = "BERTH-FORWARD"
	chainIntra   = "BERTH-INTRA"
	chainNet     = "BERTH-NET"
	chainPost    = "BERTH-POSTROUTING"
	chainDNAT    = "BERTH-DNAT"
)

// comment tags a rule as berth's: what only berth removes.
func comment(tag string) []string { return []string{"-m", "comment", "--comment", "berth:" + tag} }

func withComment(tag string, rule ...string) []string { return append(rule, comment(tag)...) }

// rule is one iptables rule of berth's.
type rule struct {
	table, chain string
	spec         []string
}

// firewall applies berth's rules.
type firewall struct{ ipt *iptables.IPTables }

func newFirewall() (*firewall, error) {
	ipt, err := iptables.New()
	if err != nil {
		return nil, fmt.Errorf("iptables: %w (install the iptables package)", err)
	}
	return &firewall{ipt: ipt}, nil
}

// firewall returns the manager's firewall, its base chains checked once
// per process (every iptables call is a process of its own: the checks
// are what made a start slow). force checks them again: after a flush.
func (m *Manager) firewall(force bool) (*firewall, error) {
	m.fwOnce.Do(func() { m.fw, m.fwErr = newFirewall() })
	if m.fwErr != nil {
		return nil, m.fwErr
	}
	m.baseMu.Lock()
	defer m.baseMu.Unlock()
	if force || !m.based {
		if err := m.fw.ensureBase(); err != nil {
			return nil, err
		}
		m.based = true
	}
	return m.fw, nil
}

// baseRules are the chains' order and the jumps into them.
func baseRules() []rule {
	return []rule{
		{"filter", chainForward, withComment("base", "-j", chainIntra)},
		{"filter", chainForward, withComment("base", "-i", "brt-+", "-o", "brt-+", "-j", "DROP")},
		{"filter", chainForward, withComment("base", "-j", chainNet)},
	}
}

// ensureBase makes berth's chains and the jumps to them, and turns IP
// forwarding on (as Docker does; it stays on).
func (f *firewall) ensureBase() error {
	for _, c := range []struct{ table, chain string }{
		{"filter", chainForward}, {"filter", chainIntra}, {"filter", chainNet}, {"nat", chainPost}, {"nat", chainDNAT},
	} {
		exists, err := f.ipt.ChainExists(c.table, c.chain)
		if err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		if !exists {
			if err := f.ipt.NewChain(c.table, c.chain); err != nil {
				return fmt.Errorf("iptables: %w", err)
			}
		}
	}
	// BERTH-FORWARD's order matters: rebuilt whole when it is not right.
	have, err := f.ipt.List("filter", chainForward)
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	// iptables -S lists the rules in its own canonical form: each is
	// recognised by its target.
	targets := []string{"-j " + chainIntra, "-j DROP", "-j " + chainNet}
	inOrder := len(have) == len(targets)+1
	for i, t := range targets {
		inOrder = inOrder && strings.HasSuffix(have[i+1], t) && strings.Contains(have[i+1], "berth:base")
	}
	if !inOrder {
		if err := f.ipt.ClearChain("filter", chainForward); err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		for _, r := range baseRules() {
			if err := f.ipt.Append(r.table, r.chain, r.spec...); err != nil {
				return fmt.Errorf("iptables: %w", err)
			}
		}
	}
	// Published ports on loopback are DNATed too (the bridges accept
	// 127.0.0.0/8 with route_localnet): from this host only, so the jump
	// from PREROUTING (packets from elsewhere) leaves loopback
	// destinations out, and INPUT drops what a container sends to the
	// host's loopback unless it answers a connection made to it — without
	// that guard, a container crafting packets to 127.0.0.1 would reach
	// the host's loopback services.
	jumps := []rule{
		{"filter", "FORWARD", withComment("base", "-j", chainForward)},
		{"filter", "INPUT", withComment("base", "-i", "brt-+", "-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")},
		{"nat", "POSTROUTING", withComment("base", "-j", chainPost)},
		{"nat", "PREROUTING", withComment("base", "!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainDNAT)},
		{"nat", "OUTPUT", withComment("base", "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainDNAT)},
	}
	// The jumps of berth before loopback ports were DNATed.
	f.ipt.Delete("nat", "PREROUTING", withComment("base", "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainDNAT)...)
	f.ipt.Delete("nat", "OUTPUT", withComment("base", "!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainDNAT)...)
	for _, j := range jumps {
		ok, err := f.ipt.Exists(j.table, j.chain, j.spec...)
		if err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		if !ok {
			if err := f.ipt.Insert(j.table, j.chain, 1, j.spec...); err != nil {
				return fmt.Errorf("iptables: %w", err)
			}
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("turning IP forwarding on: %w", err)
	}
	return nil
}

// intact reports whether the jumps into berth's chains are there (what a
// flush of the tables takes away first) and whether each tag of want has
// as many rules as want has: a cheap look (seven iptables calls), which
// another berth process putting its own rules back cannot fool.
func (f *firewall) intact(want []rule) bool {
	for _, j := range []rule{
		{"filter", "FORWARD", withComment("base", "-j", chainForward)},
		{"filter", "INPUT", withComment("base", "-i", "brt-+", "-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")},
		{"nat", "POSTROUTING", withComment("base", "-j", chainPost)},
	} {
		if ok, err := f.ipt.Exists(j.table, j.chain, j.spec...); err != nil || !ok {
			return false
		}
	}
	expected := map[string]int{}
	for _, r := range want {
		expected[r.spec[len(r.spec)-1]]++ // the comment, berth:<tag>, comes last
	}
	have := map[string]int{}
	for _, c := range []struct{ table, chain string }{
		{"filter", chainIntra}, {"filter", chainNet}, {"nat", chainPost}, {"nat", chainDNAT},
	} {
		lines, err := f.ipt.List(c.table, c.chain)
		if err != nil {
			return false
		}
		for _, l := range lines {
			for tag := range expected {
				if strings.Contains(l, tag+" ") || strings.Contains(l, tag+`"`) || strings.HasSuffix(l, tag) {
					have[tag]++
				}
			}
		}
	}
	for tag, n := range expected {
		if have[tag] < n {
			return false
		}
	}
	return true
}

// networkRules are a network's own rules.
func networkRules(n *Network) []rule {
	tag := "net:" + n.ID[:12]
	br := n.Bridge
	rules := []rule{{"filter", chainIntra, withComment(tag, "-i", br, "-o", br, "-j", "ACCEPT")}}
	if n.Internal {
		return append(rules,
			rule{"filter", chainNet, withComment(tag, "-i", br, "-j", "DROP")},
			rule{"filter", chainNet, withComment(tag, "-o", br, "-j", "DROP")})
	}
	return append(rules,
		rule{"filter", chainNet, withComment(tag, "-i", br, "!", "-o", br, "-j", "ACCEPT")},
		rule{"filter", chainNet, withComment(tag, "-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")},
		rule{"nat", chainPost, withComment(tag, "-s", n.Subnet.String(), "!", "-o", br, "-j", "MASQUERADE")},
		// A connection from the host's loopback to a published port
		// leaves with the gateway's address, which the container can
		// answer.
		rule{"nat", chainPost, withComment(tag, "-s", "127.0.0.0/8", "-o", br, "-j", "MASQUERADE")})
}

// ensureRules adds the rules missing of a set.
func (f *firewall) ensureRules(rules []rule) error {
	for _, r := range rules {
		if err := f.ipt.AppendUnique(r.table, r.chain, r.spec...); err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
	}
	return nil
}

// removeTagged deletes every rule of berth's chains tagged tag.
func (f *firewall) removeTagged(tag string) error {
	want := "berth:" + tag
	var errs []error
	for _, c := range []struct{ table, chain string }{
		{"filter", chainIntra}, {"filter", chainNet}, {"nat", chainPost}, {"nat", chainDNAT},
	} {
		rules, err := f.ipt.List(c.table, c.chain)
		if err != nil {
			continue // the chain is gone: nothing of ours in it
		}
		for _, line := range rules {
			if !strings.Contains(line, want+" ") && !strings.HasSuffix(line, want) && !strings.Contains(line, want+`"`) {
				continue
			}
			spec, ok := strings.CutPrefix(line, "-A "+c.chain+" ")
			if !ok {
				continue
			}
			if err := f.ipt.Delete(c.table, c.chain, splitRule(spec)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("iptables: removing berth's rules %s: %v", tag, errs)
	}
	return nil
}

// splitRule splits a rule as iptables -S prints it into arguments
// (double quotes group words).
func splitRule(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any || cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteRune(r)
		}
	}
	if any || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
