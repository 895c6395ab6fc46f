package mapping

// DecodeFast is decodeFast, for FuzzDecodeFast.
var DecodeFast = decodeFast
