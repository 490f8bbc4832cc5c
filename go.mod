module bridgeport

go 1.26.8
