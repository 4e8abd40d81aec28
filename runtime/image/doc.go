// Package image is berth's image store: content-addressed blobs, layers
// unpacked once per diffID and shared by every image and container, an index
// from references to manifests, pulls from registries and loads from
// tarballs. The registry protocol, manifests and tarball formats are
// go-containerregistry's; extraction, the security boundary, is berth's own.
package image
