package nsenter
