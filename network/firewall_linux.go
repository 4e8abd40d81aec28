package network

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
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

// firewall applies berth's rules. Every iptables command is a process of
// its own (about 5 ms each here): the rules are read with one
// iptables-save and changed with one iptables-restore --noflush, which
// applies its lines as one transaction and touches nothing else.
//
// They are the programs of the iptables package, so the rules land in the
// backend (nft or legacy) its iptables command uses, as Docker's do.
type firewall struct {
	save, restore string // the iptables-save and iptables-restore programs
}

func newFirewall() (*firewall, error) {
	var f firewall
	var err error
	if f.save, err = exec.LookPath("iptables-save"); err == nil {
		f.restore, err = exec.LookPath("iptables-restore")
	}
	if err != nil {
		return nil, fmt.Errorf("iptables: %w (install the iptables package)", err)
	}
	return &f, nil
}

// firewall returns the manager's firewall, its base chains checked once
// per process; force checks them again: after a flush. When this call
// checked them and changed nothing, it also returns the rules it read,
// still current for the caller's change (ensureRules), which then need
// not read them again; nil otherwise.
func (m *Manager) firewall(force bool) (*firewall, *ruleset, error) {
	m.fwOnce.Do(func() { m.fw, m.fwErr = newFirewall() })
	if m.fwErr != nil {
		return nil, nil, m.fwErr
	}
	m.baseMu.Lock()
	defer m.baseMu.Unlock()
	var rs *ruleset
	if force || !m.based {
		var err error
		if rs, err = m.fw.ensureBase(); err != nil {
			return nil, nil, err
		}
		m.based = true
	}
	return m.fw, rs, nil
}

// ruleset is the filter and nat tables as iptables-save prints them.
type ruleset struct {
	chains map[string]bool     // "table chain"
	rules  map[string][]string // "table chain": each rule after "-A chain "
}

// read runs iptables-save.
func (f *firewall) read() (*ruleset, error) {
	out, err := exec.Command(f.save).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("iptables-save: %w", err)
	}
	return parseRuleset(string(out)), nil
}

func parseRuleset(saved string) *ruleset {
	rs := &ruleset{chains: map[string]bool{}, rules: map[string][]string{}}
	table := ""
	for _, line := range strings.Split(saved, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			if name, _, ok := strings.Cut(line[1:], " "); ok {
				rs.chains[table+" "+name] = true
			}
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			rs.rules[table+" "+chain] = append(rs.rules[table+" "+chain], spec)
		}
	}
	return rs
}

// script collects the lines of one iptables-restore, by table.
type script map[string][]string

func (s script) add(table, line string) { s[table] = append(s[table], line) }

// apply runs the script with iptables-restore --noflush: its lines are
// applied at once, or none is.
func (f *firewall) apply(s script) error {
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		if len(s[table]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n%s\nCOMMIT\n", table, strings.Join(s[table], "\n"))
	}
	if b.Len() == 0 {
		return nil
	}
	cmd := exec.Command(f.restore, "--noflush", "--wait")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// line is a rule as iptables-restore reads it, after "-A chain".
func (r rule) line() string {
	args := make([]string, len(r.spec))
	for i, a := range r.spec {
		args[i] = a
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			args[i] = strconv.Quote(a)
		}
	}
	return strings.Join(args, " ")
}

// baseRules are the chains' order and the jumps into them.
func baseRules() []rule {
	return []rule{
		{"filter", chainForward, withComment("base", "-j", chainIntra)},
		{"filter", chainForward, withComment("base", "-i", "brt-+", "-o", "brt-+", "-j", "DROP")},
		{"filter", chainForward, withComment("base", "-j", chainNet)},
	}
}

// berthChains are berth's own chains.
var berthChains = []struct{ table, chain string }{
	{"filter", chainForward}, {"filter", chainIntra}, {"filter", chainNet}, {"nat", chainPost}, {"nat", chainDNAT},
}

// jump is a rule of berth's in a chain of the system, recognised in
// iptables-save's canonical form by is.
type jump struct {
	rule
	is func(saved string) bool
}

// tagged reports whether a saved rule carries berth's comment tag.
func tagged(saved, tag string) bool {
	want := "berth:" + tag
	return strings.Contains(saved, want+" ") || strings.HasSuffix(saved, want) || strings.Contains(saved, want+`"`)
}

// jumps are the jumps into berth's chains. Published ports on loopback
// are DNATed too (the bridges accept 127.0.0.0/8 with route_localnet):
// from this host only, so the jump from PREROUTING (packets from
// elsewhere) leaves loopback destinations out, and INPUT drops what a
// container sends to the host's loopback unless it answers a connection
// made to it — without that guard, a container crafting packets to
// 127.0.0.1 would reach the host's loopback services.
func jumps() []jump {
	base := func(s string) bool { return tagged(s, "base") }
	return []jump{
		{rule{"filter", "FORWARD", withComment("base", "-j", chainForward)},
			func(s string) bool { return base(s) && strings.HasSuffix(s, "-j "+chainForward) }},
		{rule{"filter", "INPUT", withComment("base", "-i", "brt-+", "-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")},
			func(s string) bool {
				return base(s) && strings.Contains(s, "127.0.0.0/8") && strings.HasSuffix(s, "-j DROP")
			}},
		{rule{"nat", "POSTROUTING", withComment("base", "-j", chainPost)},
			func(s string) bool { return base(s) && strings.HasSuffix(s, "-j "+chainPost) }},
		{rule{"nat", "PREROUTING", withComment("base", "!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainDNAT)},
			func(s string) bool {
				return base(s) && strings.Contains(s, "! -d 127.0.0.0/8") && strings.HasSuffix(s, "-j "+chainDNAT)
			}},
		{rule{"nat", "OUTPUT", withComment("base", "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainDNAT)},
			func(s string) bool {
				return base(s) && !strings.Contains(s, "! -d 127.0.0.0/8") && strings.HasSuffix(s, "-j "+chainDNAT)
			}},
	}
}

// ensureBase makes berth's chains and the jumps to them, and turns IP
// forwarding on (as Docker does; it stays on). It returns the rules it
// read when it changed none.
func (f *firewall) ensureBase() (*ruleset, error) {
	rs, err := f.read()
	if err != nil {
		return nil, err
	}
	s := script{}
	for _, c := range berthChains {
		if !rs.chains[c.table+" "+c.chain] {
			s.add(c.table, ":"+c.chain+" - [0:0]")
		}
	}
	// BERTH-FORWARD's order matters: rebuilt whole when it is not right.
	have := rs.rules["filter "+chainForward]
	targets := []string{"-j " + chainIntra, "-j DROP", "-j " + chainNet}
	inOrder := len(have) == len(targets)
	for i, t := range targets {
		inOrder = inOrder && strings.HasSuffix(have[i], t) && tagged(have[i], "base")
	}
	if !inOrder {
		if rs.chains["filter "+chainForward] {
			s.add("filter", "-F "+chainForward)
		}
		for _, r := range baseRules() {
			s.add(r.table, "-A "+r.chain+" "+r.line())
		}
	}
	for _, j := range jumps() {
		var found bool
		for _, saved := range rs.rules[j.table+" "+j.chain] {
			switch {
			case j.is(saved):
				found = true
			case tagged(saved, "base") && strings.HasSuffix(saved, "-j "+chainDNAT):
				// The jumps of berth before loopback ports were
				// DNATed, in the other chain's form.
				s.add(j.table, "-D "+j.chain+" "+saved)
			}
		}
		if !found {
			s.add(j.table, "-I "+j.chain+" 1 "+j.line())
		}
	}
	if len(s) > 0 {
		if err := f.apply(s); err != nil {
			return nil, err
		}
		rs = nil
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return nil, fmt.Errorf("turning IP forwarding on: %w", err)
	}
	return rs, nil
}

// intact reports whether the jumps into berth's chains are there (what a
// flush of the tables takes away first) and whether each tag of want has
// as many rules as want has: a cheap look (one iptables-save), which
// another berth process putting its own rules back cannot fool.
func (f *firewall) intact(want []rule) bool {
	rs, err := f.read()
	if err != nil {
		return false
	}
	for _, j := range jumps() {
		if !slices.ContainsFunc(rs.rules[j.table+" "+j.chain], j.is) {
			return false
		}
	}
	have := rs.tagCounts()
	for tag, n := range tagCounts(want) {
		if have[tag] < n {
			return false
		}
	}
	return true
}

// ruleTag is the tag of one of berth's rules: the comment comes last.
func ruleTag(r rule) string { return strings.TrimPrefix(r.spec[len(r.spec)-1], "berth:") }

// tagCounts counts rules by tag.
func tagCounts(rules []rule) map[string]int {
	out := map[string]int{}
	for _, r := range rules {
		out[ruleTag(r)]++
	}
	return out
}

// tagCounts counts the rules of berth's chains by tag.
func (rs *ruleset) tagCounts() map[string]int {
	out := map[string]int{}
	for _, c := range berthChains {
		for _, saved := range rs.rules[c.table+" "+c.chain] {
			i := strings.LastIndex(saved, "berth:")
			if i < 0 {
				continue
			}
			tag, _, _ := strings.Cut(strings.Trim(saved[i+len("berth:"):], `"`), " ")
			out[strings.TrimSuffix(tag, `"`)]++
		}
	}
	return out
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

// ensureRules adds the rules missing of a set, tag by tag (berth's rules
// of a network, of a container's ports): a tag with all its rules is
// left alone; one with some missing has its rules made again.
//
// rs, when not nil, is the rules as they are (firewall's).
func (f *firewall) ensureRules(rules []rule, rs *ruleset) error {
	if rs == nil {
		var err error
		if rs, err = f.read(); err != nil {
			return err
		}
	}
	have, want := rs.tagCounts(), tagCounts(rules)
	s := script{}
	for tag, n := range want {
		if have[tag] >= n {
			continue
		}
		if have[tag] > 0 {
			rs.deleteTagged(s, tag)
		}
		for _, r := range rules {
			if ruleTag(r) == tag {
				s.add(r.table, "-A "+r.chain+" "+r.line())
			}
		}
	}
	return f.apply(s)
}

// deleteTagged adds to s the deletion of every rule of berth's chains
// tagged tag.
func (rs *ruleset) deleteTagged(s script, tag string) {
	for _, c := range berthChains {
		for _, saved := range rs.rules[c.table+" "+c.chain] {
			if tagged(saved, tag) {
				s.add(c.table, "-D "+c.chain+" "+saved)
			}
		}
	}
}

// removeTagged deletes every rule of berth's chains tagged tag.
func (f *firewall) removeTagged(tag string) error {
	rs, err := f.read()
	if err != nil {
		return err
	}
	s := script{}
	rs.deleteTagged(s, tag)
	if err := f.apply(s); err != nil {
		return fmt.Errorf("removing berth's rules %s: %w", tag, err)
	}
	return nil
}
