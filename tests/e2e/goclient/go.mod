module berth.local/goclient

go 1.19

require berth.local/berth v0.0.0

replace berth.local/berth => ../../../clients/go
