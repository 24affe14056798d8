module berth.local/berth

go 1.19
