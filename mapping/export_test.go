package mapping

// DecodeFast is decodeFast, for the tests that hold it to encoding/json.
var DecodeFast = decodeFast

// DecodeStd is Decode with encoding/json alone, the reference.
func DecodeStd(m *Mapper, data []byte, src Source) (*Decoded, error) {
	return m.decode(data, src, false)
}
