// Package caps applies the five OCI capability sets (bounding, effective,
// permitted, inheritable, ambient) to the calling thread.
package caps
