package seccomp

import "sort"

// syscallTable maps syscall names to numbers for one architecture. Entries
// are sorted by name; the tables in zsyscalls.go are static data, so looking a
// name up costs no initialisation at program start.
type syscallTable []struct {
	name string
	nr   uint32
}

func (t syscallTable) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].name >= name })
	if i < len(t) && t[i].name == name {
		return t[i].nr, true
	}
	return 0, false
}

//go:generate go run mksyscalls.go
