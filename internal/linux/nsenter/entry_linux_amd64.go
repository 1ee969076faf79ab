package nsenter

// entry is the process entry point, in entry_linux_amd64.s.
func entry()
