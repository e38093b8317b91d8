module example.com/crosscheck/nethttp2

go 1.22

require golang.org/x/net v0.0.0-20210405180319-a5a99cb37ef4

require golang.org/x/text v0.3.3 // indirect
