// Package network will give each Compose project its Linux networks: one
// bridge per network, a veth per container attachment, addresses from IPAM,
// the firewall rules that let traffic through when the FORWARD policy is
// DROP, an embedded DNS server for service discovery, and published ports.
// It knows Linux (netlink, iptables) and nothing about YAML.
package network
