module kivebpf.dev/callback-receiver

go 1.22
