package network

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/containerd/errdefs"
)

// defaultPools are where subnets come from when a network asks for none:
// Docker's default address pools, 172.17-31.0.0/16 then 192.168.0.0/16
// in /20 blocks, so that a berth network looks like a Docker one.
var defaultPools = []struct {
	base netip.Prefix
	size int
}{
	{netip.MustParsePrefix("172.17.0.0/16"), 16},
	{netip.MustParsePrefix("172.18.0.0/15"), 16},
	{netip.MustParsePrefix("172.20.0.0/14"), 16},
	{netip.MustParsePrefix("172.24.0.0/13"), 16},
	{netip.MustParsePrefix("192.168.0.0/16"), 20},
}

// overlaps reports whether two prefixes share an address.
func overlaps(a, b netip.Prefix) bool {
	return a.Overlaps(b)
}

// pickSubnet returns the first block of the default pools that overlaps
// none of taken (the host's routes and addresses, other networks).
func pickSubnet(taken []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range defaultPools {
		step := uint64(1) << (32 - pool.size)
		first := pool.base.Masked().Addr().As4()
		start := uint64(first[0])<<24 | uint64(first[1])<<16 | uint64(first[2])<<8 | uint64(first[3])
		count := uint64(1) << (pool.size - pool.base.Bits())
		for i := uint64(0); i < count; i++ {
			v := start + i*step
			addr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			cand := netip.PrefixFrom(addr, pool.size)
			if !slices.ContainsFunc(taken, func(t netip.Prefix) bool { return overlaps(t, cand) }) {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("%w: all of the default address pools overlap existing networks or routes: set ipam.config.subnet", errdefs.ErrUnavailable)
}

// nextAddr returns the first address of subnet (within ipRange when it
// is valid) that is not the network's, the broadcast address, the gateway
// or in used.
func nextAddr(subnet, ipRange netip.Prefix, gateway netip.Addr, used []netip.Addr) (netip.Addr, error) {
	r := subnet
	if ipRange.IsValid() {
		r = ipRange
	}
	last := lastAddr(subnet)
	for a := r.Masked().Addr(); r.Contains(a); a = a.Next() {
		if a == subnet.Masked().Addr() || a == last || a == gateway || slices.Contains(used, a) {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: no free address left in %s", errdefs.ErrUnavailable, r)
}

// lastAddr is the highest address of p (the broadcast address of an IPv4
// subnet).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// macOf is the MAC address Docker derives from an IPv4 address:
// 02:42 then the four bytes of the address.
func macOf(ip netip.Addr) string {
	if !ip.Is4() {
		return ""
	}
	b := ip.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}
