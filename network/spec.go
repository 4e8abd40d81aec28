package network

import (
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/runtime/spec"
)

// AttachmentsOf are a container's attachments as Attach takes them.
func AttachmentsOf(c *spec.Container) []Attachment {
	var out []Attachment
	for _, n := range c.Networks {
		out = append(out, Attachment{Network: n.Network, Priority: n.Priority})
	}
	return out
}

// PortRules are a container's published ports as the firewall and the
// proxies take them: to its address on its first network that is not
// internal.
func (m *Manager) PortRules(c *spec.Container) ([]PortRule, error) {
	if len(c.Ports) == 0 {
		return nil, nil
	}
	var via *spec.NetworkAttachment
	for i := range c.Networks {
		if !c.Networks[i].Internal {
			via = &c.Networks[i]
			break
		}
	}
	if via == nil {
		return nil, fmt.Errorf("container %s publishes ports but is on no network that is not internal", c.Name)
	}
	n, err := m.Get(via.Network)
	if err != nil {
		return nil, err
	}
	var out []PortRule
	for _, p := range c.Ports {
		r := PortRule{ContainerID: c.ID, Bridge: n.Bridge, HostPort: p.HostPort, ContainerIP: via.IP, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
		if p.HostIP != "" {
			if r.HostIP, err = netip.ParseAddr(p.HostIP); err != nil {
				return nil, fmt.Errorf("container %s: host_ip %q: %w", c.Name, p.HostIP, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// PublishPorts opens the proxies of a container's published ports and
// adds their firewall rules, for a container the caller watches itself
// (an attached `run`); release undoes both. A port that cannot be had
// fails it all, leaving nothing.
func (m *Manager) PublishPorts(c *spec.Container) (release func() error, err error) {
	rules, err := m.PortRules(c)
	if err != nil || len(rules) == 0 {
		return func() error { return nil }, err
	}
	var proxies []*Proxy
	closeAll := func() {
		for _, p := range proxies {
			p.Close()
		}
	}
	for _, r := range rules {
		px, err := ListenProxy(r)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("container %s: %w", c.Name, err)
		}
		proxies = append(proxies, px)
	}
	if err := m.Publish(rules); err != nil {
		closeAll()
		m.Unpublish(c.ID)
		return nil, err
	}
	return func() error {
		closeAll()
		return m.Unpublish(c.ID)
	}, nil
}
